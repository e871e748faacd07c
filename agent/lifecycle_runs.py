"""The life cycle's transitions that run an instance on: a signal's delivery, scheduled
resume, expiry, recovery and retry. Each reads, decides (agent/decisions.py), asks the
store for one conditional transaction and, when it took, starts the runner;
a lost race (Conflict) is a no-op.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from procctl.agent import values
from procctl.agent.decisions import (
    RetryFromCheckpoint,
    RetryFromStart,
    decide_retry,
    delivery_write,
)
from procctl.agent.errors import Refused
from procctl.agent.expiry import Expiry
from procctl.agent.instances import InstanceManager, apply_set_json, expired_retry_refusal
from procctl.agent.lifecycle import applied_event_json
from procctl.agent.store_worker import StoreWorker
from procctl.store import InstanceRecord, StoreContract
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict
from procctl.store.records import Delivery
from procctl.store.signals import DecideDelivery, SnapshotEdit

log = logging.getLogger("procctl.agent")

INTERRUPTED_ERROR = {
    "kind": "interrupted",
    "message": "agent stopped before the first checkpoint",
}


def edit_variables(set_values: dict[str, Any]) -> Callable[[str], str]:
    """A snapshot edit for `--set`: replace stored variables before the resume."""
    set_json = json.dumps(set_values)
    return lambda text: apply_set_json(text, set_json)


def _deliver_and_read(
        store: StoreContract, *, correlation_id: str, source: str, decide: DecideDelivery,
        signal_id: str | None, payload_json: str | None, set_json: str | None,
        hold_seconds: float, edit_snapshot: SnapshotEdit | None,
        applied_event: str | None) -> tuple[Delivery, InstanceRecord | None]:
    """On the store thread, in one hand-off: the delivery, and the instance it applied
    to as it is right after (what its resume reads)."""
    done = store.deliver_signal(
        correlation_id=correlation_id, source=source, decide=decide, signal_id=signal_id,
        payload_json=payload_json, set_json=set_json, hold_seconds=hold_seconds,
        edit_snapshot=edit_snapshot, applied_event=applied_event)
    if done.outcome != "applied" or not done.instance_id:
        return done, None
    return done, store.get_instance(done.instance_id)


class Lifecycle:
    def __init__(self, manager: InstanceManager, worker: StoreWorker) -> None:
        self.manager = manager
        self.worker = worker

    async def deliver(self, *, correlation_id: str, payload: Any, signal_id: str | None,
                      source: str, set_values: dict[str, Any] | None,
                      hold_seconds: float,
                      before_launch: Callable[[str], None] | None = None) -> Delivery:
        """Record one signal as decided (decisions.decide_delivery: applied, held, a
        repeat or refused) and, when it applied, run its instance on; `before_launch`
        is called with its ID first (those who follow it subscribe then, so they see
        every event of the run)."""
        try:
            payload_json = values.dumps(payload)
        except TypeError:
            payload_json = values.dumps(values.to_plain(payload))
        # signal_applied is written by the delivery's transaction, when it applies.
        delivery, record = await self.worker.call(
            _deliver_and_read, self.worker.store, correlation_id=correlation_id,
            source=source, signal_id=signal_id, payload_json=payload_json,
            set_json=json.dumps(set_values) if set_values else None,
            hold_seconds=hold_seconds, decide=delivery_write,
            edit_snapshot=edit_variables(set_values) if set_values else None,
            applied_event=applied_event_json(source, signal_id, payload,
                                             list(set_values or ())))
        if delivery.outcome == "applied" and delivery.instance_id:
            if before_launch is not None:
                before_launch(delivery.instance_id)
            await self.manager.resume_delivery(delivery, record=record)
        return delivery

    async def resume_scheduled(self, instance_id: str) -> bool:
        """paused -> running at its `resume_at`; False when a signal resumed it first."""
        try:
            checkpoint = await self.worker.call(
                self.worker.store.take_resume, instance_id,
                event=("scheduled_resume", {"iteration": None}))
        except Conflict:
            return False
        await self.manager.resume(instance_id, checkpoint, resumed_by="schedule")
        return True

    async def resume_expired(self, expiry: Expiry) -> bool:
        """Apply an `on_expire = { resume = ... }` policy: run the instance on with its
        payload; False when it no longer qualifies. (Expiries that fail instances go in
        batches: Scheduler.apply.)"""
        store = self.worker.store
        try:
            checkpoint = await self.worker.call(
                store.take_resume, expiry.instance_id, clear_expiry=True,
                payload_json=values.dumps(expiry.payload),
                event=("instance_expired", {"action": "resume",
                                            "payload": values.to_plain(expiry.payload)}))
        except Conflict:
            return False
        await self.manager.resume(expiry.instance_id, checkpoint, resumed_by="expiry",
                                  payload=expiry.payload)
        return True

    async def retry(self, instance_id: str) -> str:
        """Retry a failed or held instance: from its checkpoint through the recover block
        when it holds one, else from the beginning with the same params. Returns what
        was done; Refused when it cannot be retried."""
        store = self.worker.store
        record = await self.worker.call(store.get_instance, instance_id)
        checkpoint = await self.worker.call(store.find_checkpoint, record.id)
        if checkpoint is None and record.status == "failed":
            pinned = await self.worker.call(store.get_definition, record.definition_sha256)
            refusal = expired_retry_refusal(record, pinned.path)
            if refusal is not None:
                raise refusal
        decision = decide_retry(record.status,
                                None if checkpoint is None else checkpoint.correlation_id)
        if isinstance(decision, RetryFromCheckpoint):
            assert self.manager.deliver is not None  # set by the agent
            delivery = await self.manager.deliver(
                correlation_id=decision.correlation_id, payload=None,
                signal_id=uuid.uuid4().hex, source=f"cli:retry {record.id}")
            if delivery.outcome != "applied":
                raise Refused(f"instance {record.id} cannot be retried: {delivery.reason}")
            return "resumed from its checkpoint"
        if isinstance(decision, RetryFromStart):
            await self.worker.call(store.restart_instance, record.id, ("failed", "paused"),
                                   [(record.id, utc_now(), "instance_restarted",
                                     json.dumps({"by": "retry"}), None, None)])
            await self.manager.restart(record.id)
            return "restarted from the beginning"
        raise Refused(f"instance {record.id} is {record.status}; only a failed or "
                      "held instance can be retried", hint=f"procctl show {record.id}")

    async def recover(self, instance_id: str) -> None:
        """An instance the last agent left running: from its checkpoint through the
        recover block; with none, as its definition's `on_crash` says."""
        store = self.worker.store
        checkpoint = await self.worker.call(store.find_checkpoint, instance_id)
        if checkpoint is not None and checkpoint.pausing:
            # It had saved a checkpoint that pauses and had not paused yet (its commit
            # block may have run): a gate is never passed without its signal. It stays
            # running (a signal that comes meanwhile is held) through its recover
            # block, then pauses there, its TTL unchanged.
            taken = await self.worker.call(store.mark_recovered, instance_id,
                                           {"pause_again": True})
            log.warning("recovering instance at the checkpoint it had not paused at",
                        extra={"instance": instance_id})
            await self.manager.resume(instance_id, taken, resumed_by="recovery",
                                      run_recover=True, pause_again=True)
            return
        if checkpoint is not None:
            taken = await self.worker.call(store.take_resume, instance_id, "running",
                                           event=("instance_recovered", {"iteration": None}))
            log.warning("recovering instance from its checkpoint",
                        extra={"instance": instance_id})
            # With the payload of the resume it repeats: an applied signal's data
            # is not lost to the crash.
            await self.manager.resume(instance_id, taken, resumed_by="recovery",
                                      payload=values.loads(taken.resume_payload_json),
                                      run_recover=True)
            return
        record = await self.worker.call(store.get_instance, instance_id)
        try:
            policy = (await self.manager.definition(record.definition_sha256)).on_crash
        except Exception:  # its definition no longer loads: fail it, do not guess
            policy = "fail"
        await self.apply_on_crash(instance_id, policy)

    async def apply_on_crash(self, instance_id: str, policy: str) -> None:
        store = self.worker.store
        event = json.dumps({"on_crash": policy, "error": INTERRUPTED_ERROR})
        if policy == "restart":  # it stays running: the event is all that changes
            await self.worker.call(store.add_event, instance_id, "instance_restarted", event)
            log.warning("restarting interrupted instance", extra={"instance": instance_id})
            await self.manager.restart(instance_id)
        elif policy == "hold":
            await self.worker.call(store.hold_instance, instance_id,
                                   json.dumps(INTERRUPTED_ERROR),
                                   [(instance_id, utc_now(), "instance_held", event, None,
                                     None)])
            log.warning("holding interrupted instance", extra={"instance": instance_id})
        else:
            # Queued first: the event rides along with the status change.
            self.worker.add_event_soon(instance_id, utc_now(), "instance_failed", event,
                                       None, None)
            await self.worker.call(store.finish_instance, instance_id, "failed",
                                   error_json=json.dumps(INTERRUPTED_ERROR))
            log.warning("instance interrupted by the last stop", extra={"instance": instance_id})
