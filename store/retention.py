"""Clean-up: finished instances past the retention, old signal records (procctl purge
--finished, the retention setting, clearing old signal records).

Shared by both backends (store/sqlite.py, store/postgres.py), in the SQL both run.

A purge reads the finished instances a page at a time from `instances_by_status`
(status, started_at): an instance that ended before the cut started before it too, so
each status's range stops at the cut and what is recent is never read. A page is then
removed in one transaction with its history, checkpoint and signal rows; the instances
are locked first (an UPDATE that rewrites nothing), and only those that still qualify
are removed, so a retry or a signal racing the purge either comes first (the instance
is running again and stays) or finds no instance.

An instance is kept, whatever its age, while its parent or one of its children is
running or paused: a parent paused at a call is woken with its child's outcome, and a
child's run reports to its parent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from procctl.store.dbapi import Db

#: the statuses of an instance that has ended (a failed one may still hold a checkpoint
#: and be retried: it is purged only when it ended before the cut, as the others)
FINISHED = ("completed", "failed", "cancelled")
#: the signal records `procctl signals --clear` removes: those that resumed nothing
CLEARED_SIGNALS = ("rejected", "unmatched", "duplicate")
#: instances a page reads at most (beyond: the rows that started at the same moment as
#: the page's last, so that the next page starts after them)
PAGE = 500
_ACTIVE = "('running', 'paused')"


def _free(alias: str) -> str:
    """SQL: the instance `alias` has no running or paused parent or child (each a probe
    of an index: the primary key, instances_by_call)."""
    return (f"({alias}.parent_id IS NULL OR NOT EXISTS (SELECT 1 FROM instances p"
            f" WHERE p.id = {alias}.parent_id AND p.status IN {_ACTIVE}))"
            " AND NOT EXISTS (SELECT 1 FROM instances ch"
            f" WHERE ch.parent_id = {alias}.id AND ch.status IN {_ACTIVE})")


#: where the next page of finished instances starts: (status, started_at) of the last
#: row read
FinishedKey = tuple[str, str]


@dataclass(frozen=True)
class FinishedRow:
    """A finished instance that ended before a purge's cut."""

    instance_id: str
    status: str
    process_name: str
    started_at: str
    ended_at: str

    @property
    def key(self) -> FinishedKey:
        return (self.status, self.started_at)


@dataclass(frozen=True)
class Purged:
    """What one purge transaction removed."""

    instance_ids: tuple[str, ...] = ()
    events: int = 0
    checkpoints: int = 0
    signals: int = 0


class RetentionContract(Protocol):
    """The part of the store contract (store/protocol.py) that this module keeps."""

    def finished_page(self, before: str, *, after: FinishedKey | None = None,
                      limit: int = PAGE) -> list[FinishedRow]: ...

    def purge_finished(self, instance_ids: Sequence[str], before: str) -> Purged: ...

    def count_old_signals(self, before: str) -> int: ...

    def clear_old_signals(self, before: str, limit: int = PAGE) -> int: ...


class RetentionOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    _lock_keys: Callable[..., None]
    agent_id: str | None

    def finished_page(self, before: str, *, after: FinishedKey | None = None,
                      limit: int = PAGE) -> list[FinishedRow]:
        """Completed, failed and cancelled instances that ended before `before` (and
        have no running or paused parent or child), status by status in FINISHED's
        order, each by start time; starting after the key `after` (FinishedRow.key);
        about `limit` (a few more when several started at the same moment as the
        last)."""
        rows: list[FinishedRow] = []
        limit = max(limit, 1)
        first = FINISHED.index(after[0]) if after else 0
        for status in FINISHED[first:]:
            since = after[1] if after and after[0] == status else ""
            rows.extend(self._finished_of(status, before, since, limit - len(rows)))
            if len(rows) >= limit:
                break
        return rows

    def _finished_of(self, status: str, before: str, since: str,
                     limit: int) -> list[FinishedRow]:
        select = ("SELECT i.id, i.status, i.process_name, i.started_at, i.ended_at"
                  " FROM instances i WHERE i.status = ? AND {}"
                  f" AND i.ended_at IS NOT NULL AND i.ended_at < ? AND {_free('i')}")
        found = [_finished_row(row) for row in self._db.execute(
            select.format("i.started_at > ? AND i.started_at < ?")
            + " ORDER BY i.started_at LIMIT ?", (status, since, before, before, limit))]
        if len(found) == limit:
            # The rest of the rows that started when the last did, so the next page
            # can start strictly after that moment.
            last, seen = found[-1].started_at, {row.instance_id for row in found}
            found.extend(row for row in map(_finished_row, self._db.execute(
                select.format("i.started_at = ?"), (status, last, before)))
                if row.instance_id not in seen)
        return found

    def purge_finished(self, instance_ids: Sequence[str], before: str) -> Purged:
        """Remove those of `instance_ids` that are still finished, ended before
        `before` and free (see the module), with their events, checkpoint and signal
        rows, in one transaction. Returns what was removed."""
        if not instance_ids:
            return Purged()
        marks = ", ".join("?" for _ in instance_ids)
        with self._write() as db:
            # A signal for a failed instance's checkpoint (a retry by resume) locks its
            # correlation ID before the instance: so do we, in the same order.
            held = db.execute(f"SELECT correlation_id FROM checkpoints WHERE instance_id"
                              f" IN ({marks})", tuple(instance_ids)).fetchall()
            self._lock_keys(db, *(str(row[0]) for row in held))
            finished = ", ".join(f"'{status}'" for status in FINISHED)
            # `+status`: by the primary key (the planner would walk every finished one)
            locked = tuple(sorted(str(row[0]) for row in db.execute(
                f"UPDATE instances SET updated_at = updated_at WHERE id IN ({marks})"
                f" AND +status IN ({finished}) AND ended_at IS NOT NULL AND ended_at < ?"
                f" AND {_free('instances')} RETURNING id",
                (*instance_ids, before)).fetchall()))
            if not locked:
                return Purged()
            marks = ", ".join("?" for _ in locked)
            counts = [int(db.execute(f"DELETE FROM {table} WHERE instance_id IN ({marks})",
                                     locked).rowcount)
                      for table in ("events", "checkpoints", "signals")]
            db.execute(f"DELETE FROM instances WHERE id IN ({marks})", locked)
        return Purged(locked, *counts)

    def count_old_signals(self, before: str) -> int:
        """How many rejected, unmatched and duplicate signal records were received
        before `before` (each status's range of signals_by_status)."""
        return sum(int(self._db.execute(
            "SELECT COUNT(*) FROM signals WHERE status = ? AND received_at < ?",
            (status, before)).fetchone()[0]) for status in CLEARED_SIGNALS)

    def clear_old_signals(self, before: str, limit: int = PAGE) -> int:
        """Remove at most `limit` of the rejected, unmatched and duplicate signal
        records received before `before`, in one transaction; how many were removed
        (fewer than `limit`: none is left)."""
        removed = 0
        with self._write() as db:
            for status in CLEARED_SIGNALS:
                if removed >= limit:
                    break
                removed += int(db.execute(
                    "DELETE FROM signals WHERE id IN (SELECT id FROM signals WHERE"
                    " status = ? AND received_at < ? LIMIT ?)",
                    (status, before, limit - removed)).rowcount)
        return removed


def _finished_row(row: Sequence[object]) -> FinishedRow:
    return FinishedRow(str(row[0]), str(row[1]), str(row[2]), str(row[3]), str(row[4]))
