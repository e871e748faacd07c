"""Instances in the agent: start, resume from a checkpoint, finish; watchers of each.

An instance runs as one asyncio task; when it pauses the task ends and nothing of it
stays in memory: it lives in the store until a signal, the clock or a person resumes
it from its snapshot, with the definition text pinned to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from procctl.agent import snapshot as snapshots
from procctl.agent import values
from procctl.agent.calls import CALL_PREFIX, called_child
from procctl.agent.definition import Definition, Step
from procctl.agent.definition.children import pinned_from_store
from procctl.agent.definition.payload_fields import expects_json
from procctl.agent.definition.pinned import parse_pinned
from procctl.agent.engine.runner import Outcome, Runner
from procctl.agent.engine.state import (
    Cancellation,
    InstanceCancelled,
    InstanceState,
    ResumeInfo,
)
from procctl.agent.errors import Refused, StepFailed
from procctl.agent.faults import failing, fault, halt
from procctl.agent.lifecycle import parent_to_wake
from procctl.agent.snapshot import Snapshot
from procctl.agent.store_worker import StoreWorker
from procctl.store import InstanceRecord
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict, Fenced
from procctl.store.records import CheckpointRecord, Delivery, EventRow, SignalRecord, Status
from procctl.store.sqlite import TERMINAL_STATUSES

log = logging.getLogger("procctl.agent")

Event = dict[str, Any]
#: deliver(correlation_id, payload, signal_id, source) -> Delivery, for the signal step
Deliver = Callable[..., Awaitable[Delivery]]

RESUMED_BY_SOURCE = {"cli": "manual", "expiry": "expiry"}


def started_event(instance_id: str, definition: Definition) -> EventRow:
    """The instance_started event, written with the instance's creation."""
    return (instance_id, utc_now(), "instance_started",
            json.dumps({"process": definition.name}), None, None)


_SCALARS = (str, int, float, bool, type(None))


def flat_plain(data: dict[str, Any]) -> bool:
    """Is this event data already what `values.to_plain` makes of it (text keys,
    scalar values: most events' data, such as step_started's and step_finished's)?"""
    return all(type(key) is str and type(item) in _SCALARS for key, item in data.items())


def apply_set_json(snapshot_json: str, set_json: str) -> str:
    """A snapshot with a signal's `set` edits applied to its stored variables."""
    snapshot = snapshots.loads(snapshot_json)
    variables = {**snapshot.variables, **json.loads(set_json)}
    return snapshots.dumps(dataclasses.replace(snapshot, variables=variables))


class GroupCommitFailed(RuntimeError):
    """The task that commits checkpoints died while this one waited for it."""


def held_signal_event(signal: SignalRecord) -> dict[str, Any]:
    """signal_applied's data for a signal held pending and taken by the pause."""
    applied: dict[str, Any] = {
        "source": signal.source, "signal_id": signal.signal_id,
        "payload": values.to_plain(values.loads(signal.payload_json)), "held_pending": True}
    if signal.set_json:  # its `set` was applied at the pause, as for any signal
        applied["set"] = sorted(json.loads(signal.set_json))
    return applied


def resumed_by_for(signal: SignalRecord) -> str:
    return RESUMED_BY_SOURCE.get(signal.source.split(":")[0], "signal")


def expired_retry_refusal(record: InstanceRecord, definition_file: str | None) -> Refused | None:
    """Why `procctl retry` must not touch an instance that failed by expiry, or None.

    Expiry discarded its snapshot, so there is nothing to go on from; starting it again
    would repeat the steps before the checkpoint and its commit block, which had run."""
    error = json.loads(record.error_json) if record.error_json else None
    if record.status != "failed" or not isinstance(error, dict) or error.get("kind") != "expired":
        return None
    when = record.ended_at or record.updated_at
    at = when[:19].replace("T", " ") + " UTC" if when else "an unknown time"
    run = f"procctl run {definition_file}" if definition_file else "procctl run FILE"
    return Refused(f"instance {record.id} cannot be retried: its checkpoint expired at {at}, "
                   "the snapshot is gone",
                   hint=f"run the process again with: {run} (procctl show {record.id} "
                   "lists its params)")


class InstanceHooks:
    """The engine's checkpoint hooks for one instance: commits go through the store."""

    def __init__(self, manager: InstanceManager, instance_id: str) -> None:
        self.manager = manager
        self.instance_id = instance_id
        self.pending: SignalRecord | None = None
        #: set by InstanceManager.cancel (see EngineHooks.cancellation)
        self.cancellation: Cancellation | None = None

    async def save_checkpoint(self, step: Step, snapshot: Snapshot, *,
                              expires_at: str | None, on_expire_json: str | None,
                              resume_at: str | None = None, pausing: bool = False) -> int:
        text = snapshots.dumps(snapshot)
        await halt("before_checkpoint_commit")
        try:
            await self.manager.commit_checkpoint({
                "instance_id": self.instance_id, "step_id": step.id,
                "correlation_id": snapshot.correlation_id, "snapshot_json": text,
                "expires_at": expires_at, "on_expire_json": on_expire_json,
                "resume_at": resume_at, "pausing": pausing,
                "expects_json": expects_json(step)})
        except Conflict as exc:
            raise StepFailed(exc.message, step_id=step.id, step_path=step.path,
                             kind="correlation_conflict") from exc
        except GroupCommitFailed as exc:
            raise StepFailed(str(exc), step_id=step.id, step_path=step.path,
                             kind="store") from exc
        await halt("before_commit_block")
        return len(text.encode())

    async def pause(self, step: Step, event: dict[str, Any], *, commit_value: Any,
                    resume_at: str | None) -> None:
        """Paused, with instance_paused, in one transaction; a signal held for this
        checkpoint is taken in it too (applied, with its signal_applied event). A
        cancelled instance (a checkpoint in a `finally` that runs because of the
        cancel) does not pause: it ends cancelled."""
        if self.cancellation is not None:
            raise InstanceCancelled(self.cancellation)
        worker = self.manager.worker
        plain = values.to_plain(event)
        at = utc_now()
        self.pending = await worker.call(
            worker.store.pause_instance, self.instance_id,
            commit_value_json=values.dumps(commit_value), resume_at=resume_at,
            apply_set=apply_set_json,
            events=[(self.instance_id, at, "instance_paused", json.dumps(plain), step.id,
                     step.path)],
            applied_event=lambda signal: json.dumps(held_signal_event(signal)))
        self.manager.publish(self.instance_id, {
            "kind": "instance_paused", "step_id": step.id, "step_path": step.path,
            "data": plain, "at": at})
        await halt("after_pause_commit")

    async def send_signal(self, *, correlation_id: str, payload: Any,
                          signal_id: str | None) -> dict[str, Any]:
        if self.manager.deliver is None:
            raise StepFailed("signals are not available in this agent", kind="internal")
        delivery = await self.manager.deliver(
            correlation_id=correlation_id, payload=payload, signal_id=signal_id,
            source=f"step:{self.instance_id}")
        return {"outcome": delivery.outcome, "instance_id": delivery.instance_id,
                "reason": delivery.reason, "correlation_id": correlation_id}

    async def start_child(self, definition: Definition, params: dict[str, Any],
                          call_key: str) -> str:
        return await self.manager.start_child(self.instance_id, definition, params, call_key)

    async def wait_child(self, instance_id: str, *, until_paused: bool) -> dict[str, Any]:
        record = await self.manager.wait_settled(instance_id, until_paused=until_paused)
        return {"status": record.status, "result": values.loads(record.result_json),
                "error": json.loads(record.error_json) if record.error_json else None}


#: seconds between two reads of a child's status when the store is shared
CHILD_POLL = 0.5


class InstanceManager:
    def __init__(self, worker: StoreWorker) -> None:
        self.worker = worker
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.watchers: dict[str, set[asyncio.Queue[Event]]] = {}
        self.deliver: Deliver | None = None  # set by the agent (signals go through intake)
        #: this agent's pool (the `pool` setting): it runs definitions of no pool or of it
        self.pool = "default"
        self._definitions: dict[str, Definition] = {}
        self._batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._batch_wakeup: asyncio.Event | None = None
        self._batch_task: asyncio.Task[None] | None = None
        #: the batch the group-commit task is committing (failed if the task dies)
        self._committing: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._settle_waiters: dict[str, set[asyncio.Event]] = {}
        #: instance id -> how many parents wait for it in memory right now
        self._waited_on: dict[str, int] = {}
        #: the hooks of the instances whose Runner runs now (what `cancel` can stop)
        self._running: dict[str, InstanceHooks] = {}

    # -- watchers -------------------------------------------------------------------

    def subscribe(self, instance_id: str) -> asyncio.Queue[Event]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self.watchers.setdefault(instance_id, set()).add(queue)
        return queue

    def unsubscribe(self, instance_id: str, queue: asyncio.Queue[Event]) -> None:
        watchers = self.watchers.get(instance_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                self.watchers.pop(instance_id, None)

    def publish(self, instance_id: str, event: Event) -> None:
        for queue in self.watchers.get(instance_id, ()):
            queue.put_nowait(event)
        if event["kind"] == "instance_settled":
            for waiter in self._settle_waiters.pop(instance_id, ()):
                waiter.set()

    async def wait_settled(self, instance_id: str, *,
                           until_paused: bool = False) -> InstanceRecord:
        """Wait until an instance completes, fails or is cancelled (or, with
        `until_paused`, pauses). While a parent waits here for its child, the child's
        end wakes it directly; otherwise it takes a signal (see `wake_parent`)."""
        self._waited_on[instance_id] = self._waited_on.get(instance_id, 0) + 1
        try:
            while True:
                woken = asyncio.Event()
                self._settle_waiters.setdefault(instance_id, set()).add(woken)
                record = await self.worker.call(self.worker.store.get_instance, instance_id)
                if record.status in TERMINAL_STATUSES or (
                        until_paused and record.status == "paused"):
                    self._settle_waiters.get(instance_id, set()).discard(woken)
                    return record
                if self.worker.store.shared:
                    # The child may run on another agent (taken over, or resumed
                    # there): its end is read from the store.
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(woken.wait(), CHILD_POLL)
                    self._settle_waiters.get(instance_id, set()).discard(woken)
                else:
                    await woken.wait()
        finally:
            self._waited_on[instance_id] -= 1
            if not self._waited_on[instance_id]:
                del self._waited_on[instance_id]

    async def wake_parent(self, child: InstanceRecord) -> None:
        """A child ended: resume its parent if the parent paused waiting for it. The
        signal is held pending when the parent has not paused yet (it is committing
        its snapshot), and applied when it does."""
        if child.id in self._waited_on or self.deliver is None:
            return
        wake = await self.worker.call(parent_to_wake, self.worker.store, child)
        if wake is None:  # no parent, or nobody left to wake
            return
        fault("before_wake_parent")
        await self.deliver(correlation_id=wake.correlation_id, payload=None,
                           signal_id=wake.signal_id, source=wake.source)

    async def wake_parents(self) -> None:
        """At start: parents paused at a call whose child ended while no agent ran (or
        before the signal was committed) are resumed now."""
        store = self.worker.store
        for parent in await self.worker.call(store.paused_at_calls, CALL_PREFIX):
            child = await self.worker.call(store.get_instance,
                                           str(called_child(parent.correlation_id)))
            if child.status in TERMINAL_STATUSES:
                await self.wake_parent(child)

    # -- starting and resuming ------------------------------------------------------

    async def start(self, definition: Definition, params: dict[str, Any],
                    trigger: dict[str, Any], *, subscribe: bool = False,
                    ) -> tuple[str, asyncio.Queue[Event] | None]:
        """Record a new instance and launch it; with `subscribe`, a queue of its events
        that exists before the first one is sent."""
        self.refuse_other_pool(definition)
        instance_id = secrets.token_hex(6)
        store = self.worker.store
        await self._pin(definition)
        started = started_event(instance_id, definition)
        record = await self.worker.call(
            store.create_instance, instance_id, definition.sha256, definition.name,
            definition.version, values.dumps(params), json.dumps(trigger),
            events=[started], pool=definition.pool)
        state = self._state(record, definition, dict(params))
        queue = self.subscribe(instance_id) if subscribe else None
        self._launch(instance_id, definition, state, None, started=started)
        return instance_id, queue

    def refuse_other_pool(self, definition: Definition) -> None:
        """Refused: a new instance of a definition that only another pool may run."""
        if definition.pool is not None and definition.pool != self.pool:
            raise Refused(
                f"process {definition.name!r} runs on agents of pool {definition.pool!r} "
                f"only, and this agent is in pool {self.pool!r}",
                hint=f"run it on a host whose agent has pool = {definition.pool!r} "
                     "(procctl agents lists them)")

    async def _hand_over(self, instance_id: str, definition: Definition) -> bool:
        """An instance of another pool's definition, running here after a signal, a
        schedule or a retry: given up to that pool (one of its agents claims it and runs
        it on from its checkpoint). False when this agent may run it."""
        if definition.pool is None or definition.pool == self.pool:
            return False
        await self.worker.call(self.worker.store.hand_over, instance_id)
        log.info("instance handed over to its pool", extra={
            "instance": instance_id, "pool": definition.pool})
        self.publish(instance_id, {"kind": "instance_settled"})
        return True

    async def start_child(self, parent_id: str, definition: Definition,
                          params: dict[str, Any], call_key: str) -> str:
        """The child instance of a `call`: started now, or found when this parent
        started it before (the same call, reached again after a restart)."""
        try:
            self.refuse_other_pool(definition)
        except Refused as exc:
            raise StepFailed(f"{exc.message} ({exc.hint})", kind="pool") from None
        store = self.worker.store
        existing = await self.worker.call(store.find_child, parent_id, call_key)
        if existing is not None and existing.status not in ("failed", "cancelled"):
            return existing.id
        if existing is not None:  # the parent is being retried: so is the call
            await self.worker.call(store.retire_child, existing.id)
        await self._pin(definition)
        base_dir = str(Path(definition.file).parent) if definition.file else "."
        trigger = {"id": f"call:{parent_id}", "kind": "call", "parent": parent_id,
                   "file": definition.file, "base_dir": base_dir}
        child_id = secrets.token_hex(6)
        started = started_event(child_id, definition)
        record = await self.worker.call(
            store.create_instance, child_id, definition.sha256, definition.name,
            definition.version, values.dumps(params), json.dumps(trigger),
            parent_id, call_key, events=[started], pool=definition.pool)
        self._launch(record.id, definition, self._state(record, definition, dict(params)),
                     None, started=started if record.id == child_id else None)
        return record.id

    async def _pin(self, definition: Definition) -> None:
        """Store a definition's text and, under its hash, those of the ones it calls.
        One this agent has stored or read from the store already (it is in the cache,
        with the ones it calls) needs no store call: its text is there."""
        if definition.sha256 not in self._definitions:
            for child in definition.children.values():
                await self._pin(child)
            refs = {ref: child.sha256 for ref, child in definition.children.items()}
            await self.worker.call(self.worker.store.put_definition, definition.sha256,
                                   definition.name, definition.version, definition.file,
                                   definition.source, json.dumps(refs) if refs else None)
        self._definitions[definition.sha256] = definition

    async def resume(self, instance_id: str, checkpoint: CheckpointRecord, *, resumed_by: str,
                     payload: Any = None, run_recover: bool = False,
                     pause_again: bool = False, record: InstanceRecord | None = None) -> None:
        """Run an instance (already `running` in the store) on from its checkpoint; with
        `pause_again`, through its recover block and back to a pause at it. `record`: the
        instance as read right after that transition (else it is read now)."""
        await halt("before_resume_launch")
        store = self.worker.store
        if record is None or record.id != instance_id:
            record = await self.worker.call(store.get_instance, instance_id)
        try:
            snapshot = snapshots.loads(checkpoint.snapshot_json)
            definition = await self.definition(record.definition_sha256)
        except Exception as exc:  # unreadable snapshot or definition: fail, keep both
            error = {"kind": "snapshot", "message": f"cannot resume: {exc}"}
            await self.worker.call(store.finish_instance, instance_id, "failed",
                                   error_json=json.dumps(error))
            self.publish(instance_id, {"kind": "instance_settled"})
            return
        if await self._hand_over(instance_id, definition):
            return
        info = ResumeInfo(snapshot, resumed_by, payload,
                          values.loads(checkpoint.commit_value_json), checkpoint.iteration,
                          run_recover, pause_again=pause_again)
        self._launch(instance_id, definition, self._state(record, definition, {}), info)

    async def restart(self, instance_id: str) -> None:
        """Run an instance (already `running` in the store) again from its first step."""
        record = await self.worker.call(self.worker.store.get_instance, instance_id)
        definition = await self.definition(record.definition_sha256)
        if await self._hand_over(instance_id, definition):
            return
        params = values.loads(record.params_json) or {}
        self._launch(instance_id, definition, self._state(record, definition, dict(params)),
                     None)

    async def resume_delivery(self, delivery: Delivery, *,
                              record: InstanceRecord | None = None) -> None:
        assert delivery.instance_id is not None and delivery.checkpoint is not None
        await self.resume(
            delivery.instance_id, delivery.checkpoint, record=record,
            resumed_by=resumed_by_for(delivery.signal),
            payload=values.loads(delivery.signal.payload_json),
            run_recover=delivery.from_status in ("failed", "running"),
            # a gate that failed before it paused (its commit block failed), retried
            # (no answer comes with a retry): through its recover block back to the
            # pause, as a recovery does; a signal's answer goes on past it
            pause_again=(delivery.from_status == "failed" and bool(delivery.checkpoint.pausing)
                         and delivery.signal.source.startswith("cli:retry ")))

    async def definition(self, sha256: str) -> Definition:
        cached = self._definitions.get(sha256)
        if cached is None:
            # Every text the calls reach, from the store (not the disk), on its thread;
            # parsed here.
            record, children = await self.worker.call(
                pinned_from_store, self.worker.store.get_definition, sha256)
            cached = parse_pinned(record, children)
            self._definitions[sha256] = cached
        return cached

    def _state(self, record: InstanceRecord, definition: Definition,
               variables: dict[str, Any]) -> InstanceState:
        trigger = json.loads(record.trigger_json)
        process = {"instance_id": record.id, "name": definition.name,
                   "version": definition.version, "trigger": trigger,
                   "started_at": record.started_at}
        return InstanceState(record.id, process, Path(str(trigger.get("base_dir", "."))),
                             variables=variables)

    def _launch(self, instance_id: str, definition: Definition, state: InstanceState,
                resume: ResumeInfo | None, *, started: EventRow | None = None) -> None:
        """Run the instance; `started`: its instance_started event, already written
        with its creation (else a fresh run writes one)."""
        task = asyncio.create_task(self._execute(instance_id, definition, state, resume,
                                                 started))
        self.tasks[instance_id] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self.tasks.get(instance_id) is done:
                del self.tasks[instance_id]

        task.add_done_callback(forget)

    # -- running --------------------------------------------------------------------

    async def _execute(self, instance_id: str, definition: Definition, state: InstanceState,
                       resume: ResumeInfo | None, started: EventRow | None = None) -> None:
        store = self.worker.store

        async def emit(kind: str, step: Step | None, data: dict[str, Any]) -> None:
            plain = data if flat_plain(data) else values.to_plain(data)
            at = utc_now()
            step_id, step_path = (step.id, step.path) if step is not None else (None, None)
            self.worker.add_event_soon(instance_id, at, kind, json.dumps(plain), step_id,
                                       step_path)
            if kind == "log":
                log.info(str(data.get("message")), extra={"instance": instance_id,
                                                          "step": step_id})
            if instance_id in self.watchers or kind == "instance_settled":
                self.publish(instance_id, {"kind": kind, "step_id": step_id,
                                           "step_path": step_path, "data": plain, "at": at})

        hooks = InstanceHooks(self, instance_id)
        if started is not None:  # recorded with the instance: only told to its watchers
            self.publish(instance_id, {"kind": "instance_started", "step_id": None,
                                       "step_path": None, "data": json.loads(started[3]),
                                       "at": started[1]})
        elif resume is None:
            await emit("instance_started", None, {"process": definition.name})
        self._running[instance_id] = hooks
        try:
            outcome = await Runner(definition, state, emit, hooks, resume).run()
        except asyncio.CancelledError:
            log.warning("instance interrupted by shutdown", extra={"instance": instance_id})
            raise
        except Fenced:
            # This agent lost its lease: another agent may run the instance now, and
            # the agent stops (agent/daemon.py). Nothing more is written for it here.
            log.warning("instance left to the agents that took it over",
                        extra={"instance": instance_id})
            return
        except Exception as exc:  # a bug in the engine: fail this instance, keep the agent
            log.exception("instance crashed", extra={"instance": instance_id})
            outcome = Outcome("failed", error={
                "kind": "internal", "message": f"procctl bug: {type(exc).__name__}: {exc}"})
        finally:
            # Nothing awaits between the run's end and this: a cancel that finds the
            # instance here reaches its Runner, one that does not finds it ending.
            self._running.pop(instance_id, None)
        if outcome.status != "paused":
            try:
                await self._finish(instance_id, outcome, emit)
            except Fenced:  # as above: its end is the new owner's to write
                log.warning("instance left to the agents that took it over",
                            extra={"instance": instance_id})
                return
        self.publish(instance_id, {"kind": "instance_settled"})
        if outcome.status != "paused":
            await self.wake_parent(await self.worker.call(store.get_instance, instance_id))
        if hooks.pending is not None:
            # A signal was waiting for this pause: the store applied it in the pause's
            # transaction, with its signal_applied event.
            self.publish(instance_id, {"kind": "signal_applied", "step_id": None,
                                       "step_path": None, "at": utc_now(),
                                       "data": held_signal_event(hooks.pending)})
            checkpoint = await self.worker.call(store.get_checkpoint, instance_id)
            await self.resume(instance_id, checkpoint, resumed_by=resumed_by_for(hooks.pending),
                              payload=values.loads(hooks.pending.payload_json))

    async def _finish(self, instance_id: str, outcome: Outcome,
                      emit: Callable[[str, Step | None, dict[str, Any]], Awaitable[None]]) -> None:
        store = self.worker.store
        try:
            result_json = values.dumps(outcome.result)
        except (TypeError, ValueError, RecursionError):
            try:
                result_json = values.dumps(values.to_plain(outcome.result))
            except (TypeError, ValueError, RecursionError) as exc:
                result_json = None
                outcome = Outcome("failed", error={
                    "kind": "result", "message": f"the result cannot be stored: {exc}"})
        error_json = json.dumps(outcome.error) if outcome.error else None
        if outcome.status == Status.CANCELLED:
            await self._finish_cancelled(instance_id, outcome)
            return
        # The last event first: the store thread writes it before the status changes, so
        # whoever sees the instance finished also sees its whole history.
        kind = "instance_completed" if outcome.status == "completed" else "instance_failed"
        await emit(kind, None, {"error": outcome.error} if outcome.error else {})
        await self.worker.call(store.finish_instance, instance_id, outcome.status,
                               result_json=result_json, error_json=error_json)
        log.info(f"instance {outcome.status}", extra={"instance": instance_id})

    async def _finish_cancelled(self, instance_id: str, outcome: Outcome) -> None:
        """Its `finally` blocks have run: cancelled, with instance_cancelled, in one
        transaction (from running, or paused: a pause committed as the cancel came)."""
        error = outcome.error or {}
        data = {"by": error.get("by"), "reason": error.get("reason")}
        at = utc_now()
        try:
            await self.worker.call(
                self.worker.store.cancel_instance, instance_id, json.dumps(error),
                from_statuses=(Status.RUNNING, Status.PAUSED),
                events=[(instance_id, at, "instance_cancelled", json.dumps(data), None,
                         None)],
                signal_reason=f"instance {instance_id} was "
                              f"{error.get('message', 'cancelled')}")
        except Conflict as exc:  # it ended otherwise meanwhile: that stands
            log.warning("cancelled instance not recorded as cancelled: %s", exc.message,
                        extra={"instance": instance_id})
            return
        self.publish(instance_id, {"kind": "instance_cancelled", "step_id": None,
                                   "step_path": None, "data": data, "at": at})
        log.info("instance cancelled", extra={"instance": instance_id})

    # -- cancelling -----------------------------------------------------------------

    def cancel(self, instance_id: str, cancellation: Cancellation) -> bool:
        """Stop an instance whose Runner runs here: the step that runs stops at once
        (an `exec` ends its process group, a `sleep` wakes), the `finally` blocks of
        the scopes it is in run, and it ends cancelled (`wait_settled` says when).
        False when no Runner of it runs here (paused, ended or ending, elsewhere); a
        second cancel of the same instance changes nothing and is True."""
        hooks = self._running.get(instance_id)
        task = self.tasks.get(instance_id)
        if hooks is None or task is None:
            return False
        if hooks.cancellation is None:
            hooks.cancellation = cancellation
            task.cancel()
        return True

    def cancelling(self, instance_id: str) -> Cancellation | None:
        """The cancellation of an instance still running its `finally` blocks here."""
        hooks = self._running.get(instance_id)
        return None if hooks is None else hooks.cancellation

    # -- checkpoint commits, several instances' at once -----------------------------

    async def commit_checkpoint(self, item: dict[str, Any]) -> None:
        """Queue a checkpoint for the next group commit and wait until it is durable.

        Checkpoints that arrive while a commit is under way share the next one, so
        many concurrent instances pay for one disk sync instead of one each.
        """
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._batch.append((item, future))
        if self._batch_wakeup is None:
            self._batch_wakeup = asyncio.Event()
            self._batch_task = asyncio.create_task(self._commit_batches())
            self._batch_task.add_done_callback(self._commit_task_ended)
        self._batch_wakeup.set()
        await future

    def _commit_task_ended(self, task: asyncio.Task[None]) -> None:
        """The group-commit task is watched: if it dies, it is logged, the checkpoints
        that wait for it fail with a clear error, and the next checkpoint starts a new
        task (instead of every later checkpoint waiting for ever)."""
        if task is not self._batch_task:
            return
        self._batch_task, self._batch_wakeup = None, None
        if task.cancelled():
            error: BaseException = GroupCommitFailed("the checkpoint commit was cancelled")
        else:
            cause = task.exception()
            if cause is None:
                return
            log.error("the checkpoint group commit died: %s: %s", type(cause).__name__, cause)
            error = GroupCommitFailed(
                f"the checkpoint was not committed: the agent's group commit failed "
                f"({type(cause).__name__}: {cause}); it was restarted")
        waiting, self._batch = self._committing + self._batch, []
        self._committing = []
        for _, future in waiting:
            if not future.done():
                future.set_exception(error)

    async def _commit_batches(self) -> None:
        assert self._batch_wakeup is not None
        while True:
            await self._batch_wakeup.wait()
            self._batch_wakeup.clear()
            batch, self._batch = self._batch, []
            self._committing = batch
            if not batch:
                continue
            if failing("group_commit"):  # test-only: the task dies (PROCCTL_FAIL)
                raise RuntimeError("fault point group_commit")
            try:
                outcomes = await self.worker.call(self.worker.store.save_checkpoints,
                                                  [item for item, _ in batch])
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), outcome in zip(batch, outcomes, strict=True):
                if future.done():
                    continue
                if isinstance(outcome, Exception):
                    future.set_exception(outcome)
                else:
                    future.set_result(None)
            self._committing = []
