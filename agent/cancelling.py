"""`procctl cancel`: ending a running or paused instance for good, on a person's request.

With an agent (`cancel`, on the agent's loop): a running instance this agent runs is
stopped at once (InstanceManager.cancel: the step that runs stops, the `finally` blocks
of the scopes it is in run) and ends `cancelled`; a paused one is cancelled in the store.
Without one (`cancel_without_agent`, the CLI's own call): a paused instance is cancelled
in the store, and so is one left `running` by an agent that stopped (nothing runs it, so
no `finally` block runs). Either way its checkpoint is discarded (a cancelled instance is
neither resumed nor retried), the signals held for it are refused with the cancellation
as reason, its children that have not ended are cancelled too, and a parent paused at
its call is woken (its call step fails with kind `child_cancelled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from procctl.agent.engine.state import Cancellation
from procctl.agent.errors import Refused
from procctl.agent.lifecycle import wake_parent_in_store
from procctl.agent.summary import instance_summary
from procctl.store import InstanceRecord, StoreContract
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict
from procctl.store.records import TERMINAL_STATUSES, Status

if TYPE_CHECKING:
    from procctl.agent.instances import InstanceManager

#: the longest `--reason` taken (characters)
MAX_REASON = 500
#: seconds a running instance that no Runner of this agent runs yet (it is being
#: launched: resumed, recovered) is looked for before it counts as nobody's
LAUNCH_PATIENCE = 2.0
POLL = 0.02


@dataclass
class Cancelled:
    """What a cancel did: the instance as it ended, the status it left, whether the
    `finally` blocks of its scopes ran (a Runner ran it), the children cancelled with it."""

    record: InstanceRecord
    was: str
    finally_ran: bool
    children: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The instance summary, with `cancelled_from` (running or paused),
        `finally_ran` and `children_cancelled`: what `procctl cancel --json` prints."""
        return {**instance_summary(self.record), "cancelled_from": self.was,
                "finally_ran": self.finally_ran, "children_cancelled": self.children}


def refusal(record: InstanceRecord) -> Refused:
    """Why an instance that has ended cannot be cancelled (exit code 8)."""
    if record.status == Status.CANCELLED:
        error = json.loads(record.error_json) if record.error_json else {}
        return Refused(f"instance {record.id} is cancelled already: it was "
                       f"{error.get('message', 'cancelled')}",
                       hint=f"procctl show {record.id}")
    return Refused(f"instance {record.id} is {record.status}; only a running or paused "
                   "instance can be cancelled", hint=f"procctl show {record.id}")


def cancelled_event(record_id: str, cancellation: Cancellation,
                    **extra: Any) -> tuple[str, str, str, str, None, None]:
    """The instance_cancelled event: who asked, why (and, for an instance no agent
    ran, that its `finally` blocks did not run)."""
    data = {"by": cancellation.by, "reason": cancellation.reason, **extra}
    return (record_id, utc_now(), "instance_cancelled", json.dumps(data), None, None)


def cancel_stored(store: StoreContract, record: InstanceRecord,
                  cancellation: Cancellation) -> InstanceRecord:
    """The store's transition for an instance no Runner runs: paused -> cancelled, or
    running -> cancelled while no agent took it over since `record` was read (its
    epoch). Conflict when it moved meanwhile."""
    running = record.status == Status.RUNNING
    extra = {"finally_ran": False} if running else {}
    return store.cancel_instance(
        record.id, json.dumps(cancellation.error()),
        from_statuses=(record.status,), epoch=record.epoch if running else None,
        events=[cancelled_event(record.id, cancellation, **extra)],
        signal_reason=f"instance {record.id} was {cancellation.message()}")


def for_child(parent_id: str, cancellation: Cancellation) -> Cancellation:
    """The cancellation of a child, on its parent's."""
    why = f"its parent {parent_id} was cancelled"
    return Cancellation(cancellation.by, f"{why}: {cancellation.reason}"
                        if cancellation.reason else why)


def check_reason(reason: str | None) -> str | None:
    """A `--reason` as recorded: stripped, None when empty; too long is a usage error."""
    from procctl.agent.errors import UsageError

    text = (reason or "").strip()
    if len(text) > MAX_REASON:
        raise UsageError(f"--reason is {len(text)} characters long; the most is {MAX_REASON}",
                         hint="say it in fewer words")
    return text or None


# -- without an agent (the CLI, holding the home's lock or on a shared store) --------------


def cancel_without_agent(store: StoreContract, instance_id: str,
                         cancellation: Cancellation) -> Cancelled:
    """Cancel in the store, with no agent of this home running: a paused instance, or one
    left running (by an agent that stopped; on a shared store, one whose agent's lease
    ran out). One that a live agent of the shared store runs is refused: that agent
    runs it."""
    record = store.get_instance(instance_id)
    if record.status in TERMINAL_STATUSES:
        raise refusal(record)
    if record.status == Status.RUNNING:
        runner = live_owner(store, record)
        if runner is not None:
            raise Refused(
                f"instance {record.id} runs on agent {runner} of the shared store; that "
                "agent stops it", hint=f"run procctl cancel {record.id} on that agent's "
                "host (procctl agents lists it)")
    try:
        done = cancel_stored(store, record, cancellation)
    except Conflict:
        raise Refused(f"instance {record.id} changed while it was being cancelled "
                      f"(it is {store.get_instance(record.id).status} now)",
                      hint=f"run procctl cancel {record.id} again") from None
    outcome = Cancelled(done, str(record.status), finally_ran=False)
    for child in store.active_children(done.id):
        # one that ended meanwhile, or another agent's, goes its own way
        with contextlib.suppress(Refused):
            below = cancel_without_agent(store, child.id, for_child(done.id, cancellation))
            outcome.children += [child.id, *below.children]
    wake_parent_in_store(store, done)
    return outcome


def live_owner(store: StoreContract, record: InstanceRecord) -> str | None:
    """The agent that runs a running instance, if its lease is current: "ID (host)"."""
    if not store.shared or record.owner is None:
        return None
    for agent in store.list_agents():
        if agent.id == record.owner and agent.alive:
            return f"{agent.id} ({agent.host})"
    return None


# -- in the agent -------------------------------------------------------------------------


async def cancel(manager: InstanceManager, instance_id: str, cancellation: Cancellation,
                 *, agent_id: str | None = None) -> Cancelled:
    """Cancel an instance through this agent: a Runner of it here is stopped and ends
    cancelled once its `finally` blocks have run (this waits for it); a paused one is
    cancelled in the store. Refused: it has ended, or another live agent runs it."""
    worker = manager.worker
    store = worker.store
    record = await worker.call(store.get_instance, instance_id)
    patience = time.monotonic() + LAUNCH_PATIENCE
    while True:
        if record.status in TERMINAL_STATUSES:
            raise refusal(record)
        if manager.cancel(record.id, cancellation):
            done = await manager.wait_settled(record.id)
            if done.status != Status.CANCELLED:  # it ended as the cancel came
                raise refusal(done)
            outcome = Cancelled(done, Status.RUNNING, finally_ran=True)
            break
        # another agent's (on a shared store) is looked at now; one of this agent's
        # that it does not run yet is given a moment to be launched
        elsewhere = store.shared and record.owner not in (None, agent_id)
        stored = record.status == Status.PAUSED or (
            record.id not in manager.tasks and (elsewhere or time.monotonic() > patience))
        if stored and record.status == Status.RUNNING:
            runner = await worker.call(live_owner, store, record)
            if runner is not None and record.owner != agent_id:
                raise Refused(
                    f"instance {record.id} runs on agent {runner} of the shared store; "
                    "that agent stops it", hint=f"run procctl cancel {record.id} on that "
                    "agent's host (procctl agents lists it)")
        if stored:
            try:
                done = await worker.call(cancel_stored, store, record, cancellation)
            except Conflict:  # resumed, or ended, meanwhile: look again
                record = await worker.call(store.get_instance, record.id)
                continue
            manager.publish(done.id, {"kind": "instance_settled"})
            await manager.wake_parent(done)
            outcome = Cancelled(done, str(record.status), finally_ran=False)
            break
        # Running, and its Runner is not (or no longer) here: being launched, or ending.
        await asyncio.sleep(POLL)
        record = await worker.call(store.get_instance, record.id)
    for child in await worker.call(store.active_children, done.id):
        with contextlib.suppress(Refused):  # as above
            below = await cancel(manager, child.id, for_child(done.id, cancellation),
                                 agent_id=agent_id)
            outcome.children += [child.id, *below.children]
    return outcome
