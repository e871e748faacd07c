"""Cancelling instances (procctl cancel): the transition to cancelled, from running or paused.

Shared by both backends (store/sqlite.py, store/postgres.py), in the SQL both run.

A cancelled instance has ended for good: its checkpoint is discarded (nothing can resume
or retry it) and the signals held pending for it are rejected, with the cancellation as
their reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from procctl.store.checkpoint_writes import insert_events
from procctl.store.clock import utc_now
from procctl.store.dbapi import Db
from procctl.store.errors import Conflict, NotFound
from procctl.store.records import EventRow, InstanceRecord, Status


class CancelContract(Protocol):
    """The part of the store contract (store/protocol.py) that this module keeps."""

    def cancel_instance(self, instance_id: str, error_json: str, *,
                        from_statuses: Sequence[str],
                        events: Sequence[EventRow] = (),
                        epoch: int | None = None,
                        signal_reason: str | None = None) -> InstanceRecord: ...

    def active_children(self, parent_id: str) -> list[InstanceRecord]: ...


class CancelOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    _lock_keys: Callable[..., None]
    agent_id: str | None

    def cancel_instance(self, instance_id: str, error_json: str, *,
                        from_statuses: Sequence[str],
                        events: Sequence[EventRow] = (),
                        epoch: int | None = None,
                        signal_reason: str | None = None) -> InstanceRecord:
        """-> cancelled, only from one of `from_statuses` (and, with `epoch`, only if
        no agent took the instance over since it was read), in one transaction: the
        error (who asked, why), `events`, the checkpoint discarded, and the signals
        held pending for it rejected with `signal_reason`. Returns the instance as it
        is now; Conflict (naming its status) when it is not in `from_statuses`,
        NotFound when there is no such instance."""
        now = utc_now()
        marks = ", ".join("?" for _ in from_statuses)
        guard, args = ("", ()) if epoch is None else (" AND epoch = ?", (epoch,))
        with self._write() as db:
            held = db.execute("SELECT correlation_id FROM checkpoints WHERE instance_id = ?",
                              (instance_id,)).fetchone()
            if held is not None:
                # A delivery to its checkpoint waits for this (or went first).
                self._lock_keys(db, held[0])
            cursor = db.execute(
                "UPDATE instances SET status = 'cancelled', error_json = ?, ended_at = ?,"
                " paused_at = NULL, updated_at = ?"
                f" WHERE id = ? AND status IN ({marks}){guard}",
                (error_json, now, now, instance_id, *from_statuses, *args))
            if cursor.rowcount != 1:
                raise self._not_cancelled(db, instance_id, from_statuses, epoch)
            db.execute("DELETE FROM checkpoints WHERE instance_id = ?", (instance_id,))
            db.execute(
                "UPDATE signals SET status = 'rejected', resolved_at = ?, reason = ?"
                " WHERE status = 'pending' AND instance_id = ?",
                (now, signal_reason or f"instance {instance_id} was cancelled", instance_id))
            insert_events(db, events)
            row = db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)).fetchone()
            return InstanceRecord(**dict(row))

    @staticmethod
    def _not_cancelled(db: Db, instance_id: str, from_statuses: Sequence[str],
                       epoch: int | None) -> Exception:
        row: Any = db.execute("SELECT status, epoch FROM instances WHERE id = ?",
                              (instance_id,)).fetchone()
        if row is None:
            return NotFound(f"no instance {instance_id!r}",
                            hint="procctl list shows the instances in this home")
        if row["status"] in from_statuses and epoch is not None and row["epoch"] != epoch:
            return Conflict(f"instance {instance_id} was taken over by another agent")
        return Conflict(f"instance {instance_id} is {row['status']}, not "
                        f"{' or '.join(from_statuses)}")

    def active_children(self, parent_id: str) -> list[InstanceRecord]:
        """The children of `parent_id` (its call steps' instances) that have not ended:
        running or paused, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM instances WHERE parent_id = ? AND status IN (?, ?)"
            " ORDER BY started_at, id", (parent_id, Status.RUNNING, Status.PAUSED)).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]
