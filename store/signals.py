"""Signal rows: delivery to a paused instance, pending (early) signals, duplicates.

A signal is recorded in the same transaction that resumes the instance it applies to,
so it is applied exactly once; a repeated sender `signal_id` is recorded as a duplicate.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from procctl.store.clock import utc_after, utc_now
from procctl.store.records import CheckpointRecord, Delivery, SignalRecord

SnapshotEdit = Callable[[str], str]


@dataclass(frozen=True)
class ResumeTarget:
    """Who a signal to a correlation ID would reach, as the store sees it."""

    #: a paused instance holds it, or a failed one that kept its checkpoint (a retry)
    resumable: bool
    #: the instance that holds or last held it; None when no instance ever did
    instance_id: str | None
    #: why it would not be resumed (None when resumable or unknown)
    reason: str | None


def _gone(db: sqlite3.Connection, correlation_id: str) -> tuple[str, str | None] | None:
    """The last instance with this correlation ID that no longer holds its checkpoint,
    and why a signal cannot reach it (None: it may still pause there)."""
    gone = db.execute(
        "SELECT id, status, error_json FROM instances WHERE correlation_id = ?"
        " ORDER BY updated_at DESC LIMIT 1", (correlation_id,)).fetchone()
    if gone is None:
        return None
    if gone["error_json"] and json.loads(gone["error_json"]).get("kind") == "expired":
        return gone["id"], f"expired: instance {gone['id']} expired before this signal came"
    if gone["status"] in ("completed", "cancelled"):
        return gone["id"], (f"instance {gone['id']} is {gone['status']}; its checkpoint "
                            f"{correlation_id!r} is gone")
    return gone["id"], None


#: a pending signal not held for an instance that is about to pause at its checkpoint
_NOT_HELD = ("(instance_id IS NULL OR NOT EXISTS (SELECT 1 FROM checkpoints c JOIN instances i"
             " ON i.id = c.instance_id WHERE c.instance_id = signals.instance_id"
             " AND c.pausing = 1 AND i.status = 'running'))")


class SignalOps:
    _db: sqlite3.Connection
    _write: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _resume_in: Callable[[sqlite3.Connection, str, str, str, str | None], None]

    def deliver_signal(
        self,
        *,
        correlation_id: str,
        source: str,
        signal_id: str | None = None,
        payload_json: str | None = None,
        set_json: str | None = None,
        hold_seconds: float = 600.0,
        edit_snapshot: SnapshotEdit | None = None,
        allow_retry: bool = True,
        applied_event: str | None = None,
    ) -> Delivery:
        """Apply a signal to the instance holding `correlation_id`, in one transaction.

        paused (or failed, holding a checkpoint: a retry) -> running and `applied`;
        no live checkpoint with that ID yet, or one saved by a running instance that
        has not paused at it yet -> `pending` for `hold_seconds`;
        an expired instance, or one running on after a resume -> `rejected` with the reason;
        a `signal_id` seen before -> `duplicate`.
        `edit_snapshot` rewrites the snapshot text before the resume (for --set).
        `applied_event` (data JSON): the signal_applied event, written with an applied
        signal in the same transaction.
        """
        now = utc_now()
        row_id = uuid.uuid4().hex
        with self._write() as db:
            def record(status: str, reason: str | None, instance_id: str | None = None,
                       hold_until: str | None = None) -> SignalRecord:
                resolved = None if status == "pending" else now
                db.execute(
                    "INSERT INTO signals (id, signal_id, correlation_id, payload_json, set_json,"
                    " source, status, reason, instance_id, received_at, hold_until, resolved_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (row_id, signal_id, correlation_id, payload_json, set_json, source, status,
                     reason, instance_id, now, hold_until, resolved))
                return SignalRecord(row_id, signal_id, correlation_id, payload_json, set_json,
                                    source, status, reason, instance_id, now, hold_until,
                                    resolved)

            if signal_id is not None:
                first = db.execute(
                    "SELECT received_at, status, instance_id FROM signals WHERE signal_id = ?"
                    " AND status IN ('applied', 'pending') ORDER BY received_at LIMIT 1",
                    (signal_id,)).fetchone()
                if first is not None:
                    reason = (f"duplicate: signal_id {signal_id!r} was already received at "
                              f"{first['received_at']} ({first['status']})")
                    return Delivery("duplicate", record("duplicate", reason,
                                                        first["instance_id"]), reason)
            checkpoint_row = db.execute(
                "SELECT c.*, i.status AS i_status FROM checkpoints c"
                " JOIN instances i ON i.id = c.instance_id WHERE c.correlation_id = ?",
                (correlation_id,)).fetchone()
            if checkpoint_row is None:
                gone = _gone(db, correlation_id)
                if gone is not None and gone[1] is not None:
                    gone_id, why = gone
                    return Delivery("rejected", record("rejected", why, gone_id), why, gone_id)
                reason = "no paused instance holds this correlation ID yet; held pending"
                hold = utc_after(hold_seconds)
                return Delivery("pending", record("pending", reason, None, hold), reason)
            data = dict(checkpoint_row)
            status = data.pop("i_status")
            instance_id = data["instance_id"]
            if data["expires_at"] is not None and data["expires_at"] < now and \
                    status in ("paused", "failed"):
                reason = f"expired: the checkpoint of instance {instance_id} outlived its TTL"
                return Delivery("rejected", record("rejected", reason, instance_id), reason,
                                instance_id)
            if status == "paused" or (status == "failed" and allow_retry):
                if edit_snapshot is not None:
                    data["snapshot_json"] = edit_snapshot(data["snapshot_json"])
                    db.execute("UPDATE checkpoints SET snapshot_json = ?, size = ? "
                               "WHERE instance_id = ?",
                               (data["snapshot_json"], len(data["snapshot_json"].encode()),
                                instance_id))
                self._resume_in(db, instance_id, status, now, payload_json)
                data["iteration"] += 1
                data["resume_payload_json"] = payload_json
                data["resume_at"] = None
                signal = record("applied", None if status == "paused" else "retry after failure",
                                instance_id)
                if applied_event is not None:
                    db.execute(
                        "INSERT INTO events (instance_id, at, kind, data_json) VALUES"
                        " (?, ?, 'signal_applied', ?)", (instance_id, now, applied_event))
                return Delivery("applied", signal, None, instance_id,
                                CheckpointRecord(**data), status)
            if status == "running" and (data["iteration"] == 0 or data["pausing"]):
                # Saved but not paused yet (its commit block may still be sending the
                # request this signal answers): held, and applied when it pauses.
                reason = (f"instance {instance_id} has not paused at this checkpoint yet; "
                          "held pending")
                hold = utc_after(hold_seconds)
                # A checkpoint that pauses will pause (after a crash, once recovered):
                # the signal is held for that instance, however long that takes.
                held_for = instance_id if data["pausing"] else None
                return Delivery("pending", record("pending", reason, held_for, hold), reason)
            reason = f"instance {instance_id} is {status}, not paused"
            return Delivery("rejected", record("rejected", reason, instance_id), reason,
                            instance_id)

    def record_rejected_signal(self, source: str, reason: str, *,
                               correlation_id: str | None = None,
                               signal_id: str | None = None) -> SignalRecord:
        """Keep a signal that could not even be read (bad file), with why."""
        now = utc_now()
        row_id = uuid.uuid4().hex
        with self._write() as db:
            db.execute(
                "INSERT INTO signals (id, signal_id, correlation_id, source, status, reason,"
                " received_at, resolved_at) VALUES (?, ?, ?, ?, 'rejected', ?, ?, ?)",
                (row_id, signal_id, correlation_id, source, reason, now, now))
        return SignalRecord(row_id, signal_id, correlation_id, None, None, source, "rejected",
                            reason, None, now, None, now)

    def expire_pending_signals(self, now: str) -> int:
        """Pending signals past their buffer time become `unmatched` (still listed).
        Nothing is written (no commit) when none is past it."""
        if self._db.execute("SELECT 1 FROM signals WHERE status = 'pending' AND"
                            f" hold_until < ? AND {_NOT_HELD} LIMIT 1",
                            (now,)).fetchone() is None:
            return 0
        with self._write() as db:
            cursor = db.execute(
                "UPDATE signals SET status = 'unmatched', resolved_at = ?, reason ="
                " 'no instance paused with this correlation ID within the buffer time'"
                f" WHERE status = 'pending' AND hold_until < ? AND {_NOT_HELD}", (now, now))
            return int(cursor.rowcount)

    def list_signals(self, statuses: tuple[str, ...] = ("pending", "rejected", "unmatched",
                                                          "duplicate"),
                     limit: int = 200) -> list[SignalRecord]:
        marks = ", ".join("?" for _ in statuses)
        rows = self._db.execute(
            f"SELECT * FROM signals WHERE status IN ({marks}) ORDER BY received_at DESC LIMIT ?",
            (*statuses, limit)).fetchall()
        return [SignalRecord(**dict(row)) for row in rows]

    def first_receipt(self, signal_id: str) -> SignalRecord | None:
        """The record that took a sender's signal_id (applied or pending), if any."""
        row = self._db.execute(
            "SELECT * FROM signals WHERE signal_id = ? AND status IN ('applied', 'pending')"
            " ORDER BY received_at LIMIT 1", (signal_id,)).fetchone()
        return None if row is None else SignalRecord(**dict(row))

    def file_rejection(self, name: str, since: str) -> SignalRecord | None:
        """The rejection of the signal file `name` received at or after `since`, if any
        (a file rejected before its signal_id could be read is known by its name)."""
        row = self._db.execute(
            "SELECT * FROM signals WHERE source IN (?, ?) AND status = 'rejected'"
            " AND received_at >= ? ORDER BY received_at DESC LIMIT 1",
            (f"file:{name}", f"cli:{name}", since)).fetchone()
        return None if row is None else SignalRecord(**dict(row))

    def resume_target(self, correlation_id: str) -> ResumeTarget:
        """What a signal to `correlation_id` would find now (read only; the delivery
        itself decides again, in its transaction)."""
        row = self._db.execute(
            "SELECT c.instance_id, c.iteration, c.expires_at, i.status FROM checkpoints c"
            " JOIN instances i ON i.id = c.instance_id WHERE c.correlation_id = ?",
            (correlation_id,)).fetchone()
        if row is not None:
            instance_id, status = row["instance_id"], row["status"]
            if row["expires_at"] is not None and row["expires_at"] < utc_now() and \
                    status in ("paused", "failed"):
                return ResumeTarget(False, instance_id, f"expired: the checkpoint of "
                                    f"instance {instance_id} outlived its TTL")
            if status in ("paused", "failed"):
                return ResumeTarget(True, instance_id, None)
            if status == "running" and row["iteration"] == 0:
                return ResumeTarget(False, instance_id, f"instance {instance_id} has not "
                                    "paused at this checkpoint yet")
            return ResumeTarget(False, instance_id,
                                f"instance {instance_id} is {status}, not paused")
        gone = _gone(self._db, correlation_id)
        if gone is None:
            return ResumeTarget(False, None, None)
        instance_id, reason = gone
        if reason is None:
            status = self._db.execute("SELECT status FROM instances WHERE id = ?",
                                      (instance_id,)).fetchone()[0]
            reason = f"instance {instance_id} is {status} and holds no checkpoint here"
        return ResumeTarget(False, instance_id, reason)

    def paused_correlation_ids(self) -> list[str]:
        """The correlation IDs that paused instances wait at."""
        rows = self._db.execute(
            "SELECT c.correlation_id FROM checkpoints c JOIN instances i"
            " ON i.id = c.instance_id WHERE i.status = 'paused'").fetchall()
        return [str(row[0]) for row in rows]

    def signal_outcome(self, signal_id: str) -> SignalRecord | None:
        """The latest record of a sender's signal_id (what became of it)."""
        row = self._db.execute(
            "SELECT * FROM signals WHERE signal_id = ? ORDER BY received_at DESC LIMIT 1",
            (signal_id,)).fetchone()
        return None if row is None else SignalRecord(**dict(row))
