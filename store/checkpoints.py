"""Checkpoint rows and the status transitions around them (pause, resume, expire).

Each method is one transaction; each transition is a conditional UPDATE that checks
the current status, so the agent, the CLI and a purge can race safely. A transition
writes the history events that belong to it in its own transaction, and the events
queued since the last commit (`queue_events`: steps started and finished) ride along
with whichever transaction comes next: one transition, one durable commit.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from procctl.store.checkpoint_writes import CheckpointWrite, write_checkpoints
from procctl.store.checkpoint_writes import insert_events as insert_events  # re-exported
from procctl.store.clock import utc_now
from procctl.store.dbapi import Db
from procctl.store.errors import Conflict, NotFound
from procctl.store.records import (
    CheckpointRecord,
    EventRow,
    SignalRecord,
)

#: signal_applied's data for a signal a pause took: (the signal's row) -> data JSON
AppliedEvent = Callable[[SignalRecord], str]


def event_row(instance_id: str, kind: str, data: dict[str, Any], at: str | None = None,
              step_id: str | None = None, step_path: str | None = None) -> EventRow:
    return (instance_id, at or utc_now(), kind, json.dumps(data), step_id, step_path)


def expire_in(db: Db, instance_id: str, error_json: str, now: str,
              events: Sequence[EventRow]) -> bool:
    """The expiry transition inside the caller's transaction: paused or failed past its
    TTL -> failed with `error_json`, the snapshot discarded, `events` written. False
    (nothing written) when the instance no longer qualifies (resumed meanwhile)."""
    cursor = db.execute(
        "UPDATE instances SET status = 'failed', error_json = ?, ended_at = ?,"
        " paused_at = NULL, updated_at = ? WHERE id = ? AND status IN ('paused', 'failed')"
        " AND EXISTS (SELECT 1 FROM checkpoints WHERE instance_id = ? AND"
        " expires_at IS NOT NULL AND expires_at < ?)",
        (error_json, now, now, instance_id, instance_id, now))
    if cursor.rowcount != 1:
        return False
    db.execute("DELETE FROM checkpoints WHERE instance_id = ?", (instance_id,))
    insert_events(db, events)
    return True


class CheckpointOps:
    _db: Db
    #: the agent whose connection this is (see store/agents.py): an instance that goes
    #: to running through it is its own
    agent_id: str | None
    _write: Callable[[], AbstractContextManager[Db]]
    #: events waiting for the next write transaction, and since when (monotonic)
    _queued_events: list[EventRow]
    _queued_since: float | None

    # -- events that ride along ------------------------------------------------------

    def queue_events(self, events: Sequence[EventRow]) -> None:
        """Events the next write transaction writes first (whatever it is): no commit
        of their own. `write_queued_events` writes them when no transaction comes."""
        if not events:
            return
        if not getattr(self, "_queued_events", None):
            self._queued_events = []
            self._queued_since = time.monotonic()
        self._queued_events.extend(events)

    def queued_events_due_in(self, delay: float) -> float | None:
        """Seconds until the oldest queued event has waited `delay` (<= 0: now); None
        when nothing is queued."""
        if not getattr(self, "_queued_events", None) or self._queued_since is None:
            return None
        return self._queued_since + delay - time.monotonic()

    def write_queued_events(self) -> None:
        """Write the queued events now, in a transaction of their own."""
        if getattr(self, "_queued_events", None):
            with self._write():
                pass  # _write writes them

    def _take_queued_events(self, db: Db) -> list[EventRow]:
        """Called by `_write` after BEGIN: the queued events go into this transaction."""
        carried = getattr(self, "_queued_events", None) or []
        if carried:
            self._queued_events, self._queued_since = [], None
            insert_events(db, carried)
        return carried

    def _requeue_events(self, carried: list[EventRow]) -> None:
        """The transaction that carried them rolled back: they wait for the next one."""
        if carried:
            self._queued_events = carried + (getattr(self, "_queued_events", None) or [])
            self._queued_since = time.monotonic()

    # -- checkpoints -----------------------------------------------------------------

    def save_checkpoint(
        self,
        instance_id: str,
        step_id: str,
        correlation_id: str,
        snapshot_json: str,
        *,
        expires_at: str | None,
        resume_at: str | None = None,
        on_expire_json: str | None = None,
        pausing: bool = False,
    ) -> CheckpointRecord:
        """Commit a snapshot; it replaces the instance's previous checkpoint. `pausing`:
        the instance pauses at it once its commit block has run (see `pause_instance`).

        Refused (Conflict) when another instance holds a live checkpoint with the same
        correlation ID, or when the instance is not running.
        """
        item = CheckpointWrite(instance_id, step_id, correlation_id, snapshot_json,
                               expires_at, resume_at, on_expire_json, pausing)
        with self._write() as db:
            outcome = write_checkpoints(db, [item], utc_now())[0]
        if isinstance(outcome, Conflict):
            raise outcome
        return outcome

    def save_checkpoints(self, batch: list[dict[str, Any]]) -> list[CheckpointRecord | Exception]:
        """Several instances' checkpoints in one transaction (one disk sync for all),
        each with the arguments of `save_checkpoint`; a Conflict in the place of one
        that could not be written (it wrote nothing)."""
        items = [CheckpointWrite(**item) for item in batch]
        with self._write() as db:
            outcomes: list[CheckpointRecord | Exception] = []
            outcomes.extend(write_checkpoints(db, items, utc_now()))
        return outcomes

    def get_checkpoint(self, instance_id: str) -> CheckpointRecord:
        row = self._db.execute(
            "SELECT * FROM checkpoints WHERE instance_id = ?", (instance_id,)).fetchone()
        if row is None:
            raise NotFound(f"instance {instance_id} holds no checkpoint")
        return CheckpointRecord(**dict(row))

    def find_checkpoint(self, instance_id: str) -> CheckpointRecord | None:
        row = self._db.execute(
            "SELECT * FROM checkpoints WHERE instance_id = ?", (instance_id,)).fetchone()
        return None if row is None else CheckpointRecord(**dict(row))

    def checkpoint_by_correlation(self, correlation_id: str) -> CheckpointRecord | None:
        row = self._db.execute(
            "SELECT * FROM checkpoints WHERE correlation_id = ?", (correlation_id,)).fetchone()
        return None if row is None else CheckpointRecord(**dict(row))

    def pause_instance(
        self, instance_id: str, *, commit_value_json: str | None, resume_at: str | None,
        apply_set: Callable[[str, str], str] | None = None,
        events: Sequence[EventRow] = (), applied_event: AppliedEvent | None = None,
    ) -> SignalRecord | None:
        """running -> paused, with `events` (instance_paused), in one transaction.

        A pending signal for its correlation ID is taken in the same transaction: the
        instance goes straight back to running, the signal is `applied` (with a
        signal_applied event, `applied_event(signal)` its data) and returned;
        `apply_set(snapshot, set_json)` applies the signal's variable edits to the
        snapshot text."""
        now = utc_now()
        with self._write() as db:
            correlation = db.execute(
                "SELECT correlation_id FROM checkpoints WHERE instance_id = ?",
                (instance_id,)).fetchone()
            if correlation is None:
                raise NotFound(f"instance {instance_id} holds no checkpoint")
            # A delivery to this correlation ID waits (or went first): it cannot read the
            # instance as running and hold its signal after this looked for held ones.
            self._lock_keys(db, correlation[0])
            cursor = db.execute(
                "UPDATE instances SET status = 'paused', paused_at = ?, updated_at = ? "
                "WHERE id = ? AND status = 'running'", (now, now, instance_id))
            if cursor.rowcount != 1:
                raise Conflict(f"instance {instance_id} is not running")
            db.execute(
                "UPDATE checkpoints SET commit_value_json = ?, resume_at = ?, pausing = 0 "
                "WHERE instance_id = ?", (commit_value_json, resume_at, instance_id))
            insert_events(db, events)
            row = db.execute(
                "SELECT * FROM signals WHERE status = 'pending' AND correlation_id = ? "
                "AND (hold_until >= ? OR instance_id = ?) ORDER BY received_at LIMIT 1",
                (correlation[0], now, instance_id)).fetchone()
            if row is None:
                return None
            if row["set_json"] and apply_set is not None:
                snapshot = db.execute("SELECT snapshot_json FROM checkpoints WHERE"
                                      " instance_id = ?", (instance_id,)).fetchone()[0]
                edited = apply_set(snapshot, row["set_json"])
                db.execute("UPDATE checkpoints SET snapshot_json = ?, size = ? WHERE"
                           " instance_id = ?", (edited, len(edited.encode()), instance_id))
            self._resume_in(db, instance_id, "paused", now, row["payload_json"])
            db.execute(
                "UPDATE signals SET status = 'applied', instance_id = ?, resolved_at = ?, "
                "reason = 'held pending, delivered when the checkpoint paused' WHERE id = ?",
                (instance_id, now, row["id"]))
            signal = SignalRecord(**{**dict(row), "status": "applied",
                                     "instance_id": instance_id, "resolved_at": now})
            if applied_event is not None:
                insert_events(db, [(instance_id, now, "signal_applied",
                                    applied_event(signal), None, None)])
            return signal

    def _lock_keys(self, db: Db, *keys: str | None) -> None:
        """Serialise the transactions that name the same correlation or signal ID
        (SQLite: every write transaction holds the one write lock already)."""

    def _resume_in(self, db: Db, instance_id: str, from_status: str,
                   now: str, payload_json: str | None = None) -> None:
        """-> running from the checkpoint, with the resume's payload (typed JSON).

        A recovery (from running) repeats the run that the agent's stop interrupted: it
        keeps the payload that run had, so an applied signal's data is not lost to a crash.
        """
        cursor = db.execute(
            "UPDATE instances SET status = 'running', paused_at = NULL, ended_at = NULL,"
            " error_json = NULL, updated_at = ?, owner = ? WHERE id = ? AND status = ?",
            (now, self.agent_id, instance_id, from_status))
        if cursor.rowcount != 1:
            raise Conflict(f"instance {instance_id} is not {from_status}")
        if from_status == "running":
            db.execute("UPDATE checkpoints SET iteration = iteration + 1, resume_at = NULL "
                       "WHERE instance_id = ?", (instance_id,))
        else:
            db.execute("UPDATE checkpoints SET iteration = iteration + 1, resume_at = NULL,"
                       " resume_payload_json = ? WHERE instance_id = ?",
                       (payload_json, instance_id))

    def take_resume(self, instance_id: str, from_status: str = "paused", *,
                    clear_expiry: bool = False, payload_json: str | None = None,
                    event: tuple[str, dict[str, Any]] | None = None) -> CheckpointRecord:
        """from_status -> running from the checkpoint (a schedule, a recovery, a retry,
        an expiry that resumes: that one also clears the TTL, so it acts once).

        `event` (kind, data) is written in the same transaction; an "iteration" key in
        its data is set to the iteration the instance resumes as."""
        with self._write() as db:
            now = utc_now()
            self._resume_in(db, instance_id, from_status, now, payload_json)
            if clear_expiry:
                db.execute("UPDATE checkpoints SET expires_at = NULL WHERE instance_id = ?",
                           (instance_id,))
            taken = self.get_checkpoint(instance_id)
            if event is not None:
                kind, data = event
                if "iteration" in data:
                    data = {**data, "iteration": taken.iteration}
                insert_events(db, [event_row(instance_id, kind, data, now)])
        return taken

    def mark_recovered(self, instance_id: str, data: dict[str, Any]) -> CheckpointRecord:
        """A pausing checkpoint that never paused, found at start: it stays running (its
        recover block runs, then it pauses) and an instance_recovered event says so."""
        with self._write() as db:
            taken = self.get_checkpoint(instance_id)
            if not taken.pausing:
                raise Conflict(f"instance {instance_id} is not about to pause")
            insert_events(db, [event_row(instance_id, "instance_recovered",
                                         {**data, "iteration": taken.iteration})])
        return taken

    def hold_instance(self, instance_id: str, error_json: str,
                      events: Sequence[EventRow] = ()) -> None:
        """running -> paused with no checkpoint: held for a person (on_crash = "hold")."""
        now = utc_now()
        with self._write() as db:
            insert_events(db, events)
            cursor = db.execute(
                "UPDATE instances SET status = 'paused', paused_at = ?, error_json = ?,"
                " updated_at = ? WHERE id = ? AND status = 'running'",
                (now, error_json, now, instance_id))
            if cursor.rowcount != 1:
                raise Conflict(f"instance {instance_id} is not running")

    def restart_instance(self, instance_id: str, from_statuses: tuple[str, ...],
                         events: Sequence[EventRow] = ()) -> None:
        """-> running from the beginning: result, error and any checkpoint are cleared."""
        now = utc_now()
        marks = ", ".join("?" for _ in from_statuses)
        with self._write() as db:
            insert_events(db, events)
            cursor = db.execute(
                "UPDATE instances SET status = 'running', paused_at = NULL, ended_at = NULL,"
                " error_json = NULL, result_json = NULL, correlation_id = NULL,"
                f" updated_at = ?, owner = ? WHERE id = ? AND status IN ({marks})",
                (now, self.agent_id, instance_id, *from_statuses))
            if cursor.rowcount != 1:
                raise Conflict(f"instance {instance_id} is not {' or '.join(from_statuses)}")
            db.execute("DELETE FROM checkpoints WHERE instance_id = ?", (instance_id,))

    def expire_instance(self, instance_id: str, error_json: str, now: str,
                        events: Sequence[EventRow] = ()) -> bool:
        """Paused or failed past its TTL -> failed with `error_json`; the snapshot is
        discarded and `events` written with it. False (nothing written) when it no longer
        qualifies (resumed meanwhile)."""
        with self._write() as db:
            return expire_in(db, instance_id, error_json, now, events)
