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

from procctl.store.clock import utc_after, utc_now
from procctl.store.records import CheckpointRecord, Delivery, SignalRecord

SnapshotEdit = Callable[[str], str]


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
    ) -> Delivery:
        """Apply a signal to the instance holding `correlation_id`, in one transaction.

        paused (or failed, holding a checkpoint: a retry) -> running and `applied`;
        no live checkpoint with that ID yet, or one saved by a running instance that
        has not paused at it yet -> `pending` for `hold_seconds`;
        an expired instance, or one running on after a resume -> `rejected` with the reason;
        a `signal_id` seen before -> `duplicate`.
        `edit_snapshot` rewrites the snapshot text before the resume (for --set).
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
                gone = db.execute(
                    "SELECT id, status, error_json FROM instances WHERE correlation_id = ?"
                    " ORDER BY updated_at DESC LIMIT 1", (correlation_id,)).fetchone()
                if gone is not None and gone["error_json"] and \
                        json.loads(gone["error_json"]).get("kind") == "expired":
                    reason = f"expired: instance {gone['id']} expired before this signal came"
                    return Delivery("rejected", record("rejected", reason, gone["id"]), reason,
                                    gone["id"])
                if gone is not None and gone["status"] in ("completed", "cancelled"):
                    reason = (f"instance {gone['id']} is {gone['status']}; its checkpoint "
                              f"{correlation_id!r} is gone")
                    return Delivery("rejected", record("rejected", reason, gone["id"]), reason,
                                    gone["id"])
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
                return Delivery("applied", signal, None, instance_id,
                                CheckpointRecord(**data), status)
            if status == "running" and data["iteration"] == 0:
                # Saved but not paused yet (its commit block may still be sending the
                # request this signal answers): held, and applied when it pauses.
                reason = (f"instance {instance_id} has not paused at this checkpoint yet; "
                          "held pending")
                hold = utc_after(hold_seconds)
                return Delivery("pending", record("pending", reason, None, hold), reason)
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
        """Pending signals past their buffer time become `unmatched` (still listed)."""
        with self._write() as db:
            cursor = db.execute(
                "UPDATE signals SET status = 'unmatched', resolved_at = ?, reason ="
                " 'no instance paused with this correlation ID within the buffer time'"
                " WHERE status = 'pending' AND hold_until < ?", (now, now))
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

    def signal_outcome(self, signal_id: str) -> SignalRecord | None:
        """The latest record of a sender's signal_id (what became of it)."""
        row = self._db.execute(
            "SELECT * FROM signals WHERE signal_id = ? ORDER BY received_at DESC LIMIT 1",
            (signal_id,)).fetchone()
        return None if row is None else SignalRecord(**dict(row))
