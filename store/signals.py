"""Signal rows: delivery to a paused instance, pending (early) signals, duplicates.

A signal is recorded in the same transaction that resumes the instance it applies to,
so it is applied exactly once; a repeated sender `signal_id` is recorded as a duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from procctl.store.clock import utc_after, utc_now
from procctl.store.dbapi import Db
from procctl.store.records import CheckpointRecord, Delivery, SignalRecord

SnapshotEdit = Callable[[str], str]


@dataclass(frozen=True)
class FirstReceipt:
    """The signal that took a sender's signal_id first (applied or pending)."""

    received_at: str
    status: str
    instance_id: str | None


@dataclass(frozen=True)
class Holder:
    """The instance holding a checkpoint with the signal's correlation ID."""

    instance_id: str
    status: str
    iteration: int
    pausing: bool
    expires_at: str | None
    #: the payload its checkpoint declares (`expects`); None: any payload
    expects_json: str | None = None


@dataclass(frozen=True)
class LastHolder:
    """The last instance with this correlation ID, when none holds its checkpoint now."""

    instance_id: str
    status: str
    error_json: str | None


@dataclass(frozen=True)
class DeliveryTarget:
    """What a signal finds, read in the delivery's transaction (the agent decides)."""

    correlation_id: str
    signal_id: str | None
    first: FirstReceipt | None
    holder: Holder | None
    last: LastHolder | None
    #: the signal's payload (typed JSON), for a checkpoint that declares what it expects
    payload_json: str | None = None


@dataclass(frozen=True)
class SignalWrite:
    """What the delivery writes, as decided: the signal row's `status` (a pending one
    is held for the delivery's hold time), its reason and instance, and for an applied
    signal the status its instance leaves for running (`resume_from`)."""

    status: str
    reason: str | None
    instance_id: str | None
    resume_from: str | None = None


#: the decision of a delivery: (what it finds, now) -> what to write
DecideDelivery = Callable[[DeliveryTarget, str], SignalWrite]


def _last_holder(db: Db, correlation_id: str) -> LastHolder | None:
    row = db.execute(
        "SELECT id, status, error_json FROM instances WHERE correlation_id = ?"
        " ORDER BY updated_at DESC LIMIT 1", (correlation_id,)).fetchone()
    return None if row is None else LastHolder(row["id"], row["status"], row["error_json"])


def read_target(db: Db, correlation_id: str, signal_id: str | None,
                payload_json: str | None = None
                ) -> tuple[DeliveryTarget, dict[str, Any] | None]:
    """What a signal to `correlation_id` (with `payload_json`) finds, and the holder's
    checkpoint row."""
    first = None
    if signal_id is not None:
        row = db.execute(
            "SELECT received_at, status, instance_id FROM signals WHERE signal_id = ?"
            " AND status IN ('applied', 'pending') ORDER BY received_at LIMIT 1",
            (signal_id,)).fetchone()
        if row is not None:
            first = FirstReceipt(row["received_at"], row["status"], row["instance_id"])
    checkpoint_row = db.execute(
        "SELECT c.*, i.status AS i_status FROM checkpoints c"
        " JOIN instances i ON i.id = c.instance_id WHERE c.correlation_id = ?",
        (correlation_id,)).fetchone()
    if checkpoint_row is None:
        return DeliveryTarget(correlation_id, signal_id, first, None,
                              _last_holder(db, correlation_id), payload_json), None
    data = dict(checkpoint_row)
    holder = Holder(data["instance_id"], data.pop("i_status"), data["iteration"],
                    bool(data["pausing"]), data["expires_at"], data.get("expects_json"))
    return DeliveryTarget(correlation_id, signal_id, first, holder, None, payload_json), data


#: a pending signal not held for an instance that is about to pause at its checkpoint
_NOT_HELD = ("(instance_id IS NULL OR NOT EXISTS (SELECT 1 FROM checkpoints c JOIN instances i"
             " ON i.id = c.instance_id WHERE c.instance_id = signals.instance_id"
             " AND c.pausing = 1 AND i.status = 'running'))")


class SignalOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    _resume_in: Callable[[Db, str, str, str, str | None], None]
    _lock_keys: Callable[..., None]

    def deliver_signal(
        self,
        *,
        correlation_id: str,
        source: str,
        decide: DecideDelivery,
        signal_id: str | None = None,
        payload_json: str | None = None,
        set_json: str | None = None,
        hold_seconds: float = 600.0,
        edit_snapshot: SnapshotEdit | None = None,
        applied_event: str | None = None,
    ) -> Delivery:
        """Record a signal as `decide` says, in one transaction: it reads what the
        signal finds (`DeliveryTarget`) and says what to write (`SignalWrite`).

        `applied` -> its instance runs from the checkpoint, `resume_from` its status
        before; `pending` -> held for `hold_seconds`; `rejected` and `duplicate` are
        recorded with their reason. `edit_snapshot` rewrites the snapshot text before the
        resume (for --set). `applied_event` (data JSON): the signal_applied event, written
        with an applied signal in the same transaction.
        """
        now = utc_now()
        row_id = uuid.uuid4().hex
        with self._write() as db:
            # Two agents delivering to one instance, or one pausing it meanwhile, take
            # turns: each reads what the other wrote (store/postgres.py).
            self._lock_keys(db, correlation_id, signal_id)
            target, data = read_target(db, correlation_id, signal_id, payload_json)
            write = decide(target, now)
            hold_until = utc_after(hold_seconds) if write.status == "pending" else None
            resolved = None if write.status == "pending" else now
            db.execute(
                "INSERT INTO signals (id, signal_id, correlation_id, payload_json, set_json,"
                " source, status, reason, instance_id, received_at, hold_until, resolved_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (row_id, signal_id, correlation_id, payload_json, set_json, source,
                 write.status, write.reason, write.instance_id, now, hold_until, resolved))
            signal = SignalRecord(row_id, signal_id, correlation_id, payload_json, set_json,
                                  source, write.status, write.reason, write.instance_id, now,
                                  hold_until, resolved)
            reported = write.instance_id if write.status in ("applied", "rejected") else None
            if write.status != "applied":
                return Delivery(write.status, signal, write.reason, reported)
            instance_id, from_status = write.instance_id, write.resume_from
            if data is None or instance_id is None or from_status is None or \
                    instance_id != data["instance_id"]:
                raise ValueError("an applied signal names the holder and its status")
            if edit_snapshot is not None:
                data["snapshot_json"] = edit_snapshot(data["snapshot_json"])
                db.execute("UPDATE checkpoints SET snapshot_json = ?, size = ? "
                           "WHERE instance_id = ?",
                           (data["snapshot_json"], len(data["snapshot_json"].encode()),
                            instance_id))
            self._resume_in(db, instance_id, from_status, now, payload_json)
            data["iteration"] += 1
            data["resume_payload_json"] = payload_json
            data["resume_at"] = None
            if applied_event is not None:
                db.execute(
                    "INSERT INTO events (instance_id, at, kind, data_json) VALUES"
                    " (?, ?, 'signal_applied', ?)", (instance_id, now, applied_event))
            return Delivery("applied", signal, write.reason, instance_id,
                            CheckpointRecord(**data), from_status)

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

    def resume_target(self, correlation_id: str) -> DeliveryTarget:
        """What a signal to `correlation_id` would find now, as stored (read only; the
        agent's decisions say what it means, and the delivery reads it again, in its
        transaction)."""
        return read_target(self._db, correlation_id, None)[0]

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
