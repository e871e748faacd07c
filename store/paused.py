"""Queries over paused instances: the scheduler's due resumes and expiries, listings,
the batched expiry of a purge, and the planner's statistics.

At a million paused instances these decide idle CPU, the time of `list-paused` and of
a purge, so each reads an index range and nothing else (docs/scale.md). The joins are
written `CROSS JOIN`, which makes SQLite keep the order written: the table whose index
holds the range (due checkpoints, expired checkpoints, paused instances by time) is
walked first, and the other is looked up by its key. So the plan does not depend on
statistics, which a store may lack (a new store, a store opened read-only by the CLI
before any agent analysed it); tests/unit/test_paused_queries.py checks the plans with
and without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from procctl.store.checkpoints import expire_in
from procctl.store.dbapi import Db
from procctl.store.records import CheckpointRecord, EventRow, InstanceRecord, PausedRow

#: how many rows the scheduler takes per tick (the rest waits for the next tick, so a
#: tick stays short whatever fell due at once)
TICK_BATCH = 500
#: `PRAGMA analysis_limit` for the statistics: rows ANALYZE reads per index (enough
#: for the planner, a few milliseconds whatever the store's size)
ANALYSIS_LIMIT = 1000
#: the tables whose statistics the queries here rely on
ANALYSED_TABLES = ("instances", "checkpoints")

#: the columns of a PausedRow: the instance and its checkpoint without the snapshot
_PAUSED_COLUMNS = (
    "i.*, c.step_id AS c_step_id, c.correlation_id AS c_correlation_id,"
    " c.size AS c_size, c.iteration AS c_iteration, c.created_at AS c_created_at,"
    " c.expires_at AS c_expires_at, c.resume_at AS c_resume_at,"
    " c.on_expire_json AS c_on_expire_json")


@dataclass(frozen=True)
class ExpiredRow:
    """A checkpoint past its TTL, with what the expiry decision needs."""

    instance_id: str
    expires_at: str
    status: str
    on_expire_json: str | None
    parent_id: str | None

    @property
    def key(self) -> tuple[str, str]:
        """Where the next page of expiries starts (after this one)."""
        return (self.expires_at, self.instance_id)


#: one expiry to write: (instance id, error JSON, the events written with it)
ExpiryWrite = tuple[str, str, Sequence[EventRow]]


class PausedQueries:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]

    # -- the scheduler ---------------------------------------------------------------

    def due_resumes(self, now: str, limit: int = TICK_BATCH) -> list[str]:
        """Paused instances whose resume time has come, the earliest first (at most
        `limit`): a range of the partial index on checkpoints(resume_at)."""
        rows = self._db.execute(
            "SELECT c.instance_id FROM checkpoints c CROSS JOIN instances i"
            " ON i.id = c.instance_id"
            " WHERE c.resume_at IS NOT NULL AND c.resume_at <= ? AND i.status = 'paused'"
            " ORDER BY c.resume_at LIMIT ?", (now, limit))
        return [str(r[0]) for r in rows]

    def expired(self, now: str) -> list[tuple[str, str | None]]:
        """(instance id, on_expire policy JSON) of paused or failed instances past TTL."""
        return [(row.instance_id, row.on_expire_json)
                for row in self.expired_page(now, limit=-1)]

    def expired_page(self, now: str, *, after: tuple[str, str] | None = None,
                     limit: int = TICK_BATCH) -> list[ExpiredRow]:
        """Paused or failed instances past their TTL, in (expires_at, instance id)
        order, starting after the key `after` (ExpiredRow.key); at most `limit` (a
        negative limit: all). A range of checkpoints_expiring: what is not expired is
        never read."""
        since = after or ("", "")
        rows = self._db.execute(
            "SELECT c.instance_id, c.expires_at, c.on_expire_json, i.status, i.parent_id"
            " FROM checkpoints c CROSS JOIN instances i ON i.id = c.instance_id"
            " WHERE c.expires_at IS NOT NULL AND c.expires_at < ?"
            " AND (c.expires_at, c.instance_id) > (?, ?)"
            " AND i.status IN ('paused', 'failed')"
            " ORDER BY c.expires_at, c.instance_id LIMIT ?",
            (now, *since, limit if limit >= 0 else 1 << 62))
        return [ExpiredRow(str(r[0]), str(r[1]), str(r[3]), r[2], r[4]) for r in rows]

    def expire_instances(self, expiries: Sequence[ExpiryWrite], now: str) -> list[str]:
        """Several paused-or-failed-past-TTL -> failed transitions in one transaction
        (one disk sync), each as `expire_instance` does it: conditional (an instance
        resumed meanwhile is left alone), the snapshot discarded, its events written.
        Returns the IDs that were expired."""
        done: list[str] = []
        with self._write() as db:
            for instance_id, error_json, events in expiries:
                if expire_in(db, instance_id, error_json, now, events):
                    done.append(instance_id)
        return done

    # -- listings -------------------------------------------------------------------

    def count_paused(self) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM instances WHERE status = 'paused'").fetchone()[0])

    def count_paused_upto(self, cap: int, *, process_name: str | None = None) -> int:
        """How many instances are paused, counting no further than `cap` (a count of
        a million reads a million index entries; a listing only needs "more than")."""
        clause, args = ("AND process_name = ?", (process_name,)) if process_name else ("", ())
        return int(self._db.execute(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM instances WHERE status = 'paused' {clause}"
            " LIMIT ?) AS capped", (*args, cap)).fetchone()[0])

    def list_paused(self, *, process_name: str | None = None, limit: int = 1000,
                    before: tuple[str, str] | None = None) -> list[PausedRow]:
        """Paused instances with their checkpoint, newest first (paused_at, then ID,
        descending), starting after the key `before` (the paused_at and ID of the last
        row of the previous page): keyset pages, each read from the index, however deep."""
        clauses, args = ["i.status = 'paused'"], []
        if process_name:
            clauses.append("i.process_name = ?")
            args.append(process_name)
        if before is not None:
            clauses.append("(i.paused_at, i.id) < (?, ?)")
            args.extend(before)
        # Named: by its statistics alone, SQLite prefers instances_by_status and sorts.
        index = "instances_paused_by_process" if process_name else "instances_paused_by_time"
        indexed = f"INDEXED BY {index}" if self._has_index(index) else ""
        rows = self._db.execute(
            f"SELECT {_PAUSED_COLUMNS} FROM instances i {indexed} CROSS JOIN checkpoints c"
            f" ON c.instance_id = i.id WHERE {' AND '.join(clauses)}"
            " ORDER BY i.paused_at DESC, i.id DESC LIMIT ?", (*args, limit)).fetchall()
        return [_paused_row(dict(row)) for row in rows]

    def _has_index(self, name: str) -> bool:
        """Does the file have this index? (A store of an older schema, read-only,
        lacks the later ones.)"""
        known: dict[str, bool] = self.__dict__.setdefault("_known_indexes", {})
        if name not in known:
            known[name] = self._db.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                (name,)).fetchone() is not None
        return known[name]

    def paused_at_calls(self, prefix: str) -> list[InstanceRecord]:
        """Paused instances whose correlation ID starts with `prefix` (the agent names
        a parent paused at a call so: agent/calls.py). A range of the correlation ID
        index (`+status` keeps the planner off the index of all paused instances)."""
        upper = prefix_upper(prefix)
        bound, args = ("AND correlation_id < ?", (prefix, upper)) if upper else ("", (prefix,))
        rows = self._db.execute(
            f"SELECT * FROM instances WHERE correlation_id >= ? {bound}"
            " AND +status = 'paused' ORDER BY correlation_id", args).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]

    def paused_correlation_ids_near(self, correlation_id: str, limit: int = 60) -> list[str]:
        """Correlation IDs of paused instances close to `correlation_id` in the index:
        its neighbours on both sides, and those sharing ever shorter prefixes with it,
        at most about `limit` read in all (what `procctl resume` offers as "did you
        mean" without reading every paused instance)."""
        found: dict[str, None] = {}
        side = max(limit // 4, 1)
        for op, order in (("<", "DESC"), (">", "ASC")):
            found.update(dict.fromkeys(self._paused_among(
                f"correlation_id {op} ?", (correlation_id,), order, side)))
        for length in range(len(correlation_id) - 1, 0, -1):
            if len(found) >= limit:
                break
            prefix = correlation_id[:length]
            upper = prefix_upper(prefix)
            where = "correlation_id >= ?" + (" AND correlation_id < ?" if upper else "")
            bounds = (prefix, upper) if upper else (prefix,)
            found.update(dict.fromkeys(self._paused_among(where, bounds, "ASC", side)))
        return list(found)

    def _paused_among(self, where: str, args: tuple[str, ...], order: str,
                      limit: int) -> list[str]:
        """The correlation IDs of paused instances among the first `limit` checkpoints
        of a range of the correlation ID index (never more than `limit` read)."""
        rows = self._db.execute(
            "SELECT near.correlation_id FROM (SELECT correlation_id, instance_id FROM"
            f" checkpoints WHERE {where} ORDER BY correlation_id {order} LIMIT ?) near"
            " JOIN instances i ON i.id = near.instance_id WHERE i.status = 'paused'",
            (*args, limit)).fetchall()
        return [str(row[0]) for row in rows]

    # -- statistics -------------------------------------------------------------------

    def has_statistics(self) -> bool:
        """Has the store been analysed (does the planner know the tables' sizes)?"""
        if self._db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
                            ).fetchone() is None:
            return False
        marks = ", ".join("?" for _ in ANALYSED_TABLES)
        known = self._db.execute(f"SELECT COUNT(DISTINCT tbl) FROM sqlite_stat1 WHERE tbl"
                                 f" IN ({marks})", ANALYSED_TABLES).fetchone()[0]
        return int(known) == len(ANALYSED_TABLES)

    def optimize(self) -> str:
        """Keep the planner's statistics current, within `analysis_limit` (a few
        milliseconds at a million rows): ANALYZE when the store has none, else
        `PRAGMA optimize` (which analyses what changed enough since). Returns which."""
        self._db.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
        done = "optimize" if self.has_statistics() else "analyze"
        with self._write() as db:
            db.execute("PRAGMA optimize" if done == "optimize" else "ANALYZE")
        return done


def prefix_upper(prefix: str) -> str | None:
    """The least text greater than every text that starts with `prefix` (SQLite
    compares text as UTF-8 bytes, which orders as code points do), or None if none."""
    for end in range(len(prefix) - 1, -1, -1):
        if ord(prefix[end]) < 0x10FFFF:
            following = ord(prefix[end]) + 1
            if 0xD800 <= following <= 0xDFFF:  # surrogates are not text
                following = 0xE000
            return prefix[:end] + chr(following)
    return None


def _paused_row(row: dict[str, Any]) -> PausedRow:
    checkpoint = CheckpointRecord(
        instance_id=row["id"], step_id=row.pop("c_step_id"),
        correlation_id=row.pop("c_correlation_id"), snapshot_json="", size=row.pop("c_size"),
        iteration=row.pop("c_iteration"), created_at=row.pop("c_created_at"),
        expires_at=row.pop("c_expires_at"), resume_at=row.pop("c_resume_at"),
        on_expire_json=row.pop("c_on_expire_json"), commit_value_json=None)
    return PausedRow(InstanceRecord(**row), checkpoint)
