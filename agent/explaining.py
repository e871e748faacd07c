"""Why an instance is where it is (`procctl explain ID`), as facts read from the store.

What it waits for (a signal, the clock, a child, an agent, a person's retry, or nothing:
it ended), since and until when, the signals held, refused or unmatched for it, what
its checkpoint's TTL will do, and the commands that would move it on. Read only, from
any connection (the CLI's read-only one: it works while no agent runs). No output here:
cli/commands/explain.py prints it, and adds what the payload hints know.
"""

from __future__ import annotations

import difflib
import json
import shlex
from dataclasses import dataclass, field
from typing import Any, Literal

from procctl.agent import values
from procctl.agent.decisions import ResumeWith, decide_expiry
from procctl.agent.definition import Definition
from procctl.agent.definition.pinned import pinned_definition
from procctl.agent.errors import DefinitionError
from procctl.agent.summary import waiting_for
from procctl.store import StoreContract
from procctl.store.errors import StoreError
from procctl.store.records import (
    AgentRecord,
    CheckpointRecord,
    EventRecord,
    InstanceRecord,
    SignalRecord,
    SignalStatus,
    Status,
)

#: what an instance waits for
WaitKind = Literal["signal", "clock", "child", "agent", "retry", "nothing"]
#: the signal statuses explain reports (applied ones are in the history)
NOTED_SIGNALS = (SignalStatus.PENDING, SignalStatus.REJECTED, SignalStatus.UNMATCHED,
                 SignalStatus.DUPLICATE)
#: the most recent signal records read to find an instance's (see `signals_for`)
SIGNALS_READ = 5000
#: the most signals explain lists (the newest)
SIGNALS_SHOWN = 5
#: how alike an unmatched or refused signal's correlation ID must be to this instance's
#: to be listed as probably meant for it (difflib's ratio)
NEAR_RATIO = 0.8


@dataclass(frozen=True)
class Command:
    """A command that moves the instance on (or shows more), and what it does."""

    name: str  # the procctl command: resume, retry, cancel, show, follow, explain, agent
    argv: tuple[str, ...]  # after `procctl`
    does: str

    @property
    def line(self) -> str:
        return shlex.join(("procctl", *self.argv))

    def to_json(self) -> dict[str, Any]:
        return {"command": self.line, "does": self.does}


@dataclass(frozen=True)
class SignalNote:
    """A signal for this instance that did not (yet) resume it."""

    status: str
    received_at: str
    source: str
    reason: str | None
    signal_id: str | None
    correlation_id: str | None
    hold_until: str | None
    #: sent to a correlation ID like this instance's, not to its own (a typo?)
    near: bool = False

    @classmethod
    def of(cls, record: SignalRecord, near: bool = False) -> SignalNote:
        return cls(str(record.status), record.received_at, record.source, record.reason,
                   record.signal_id, record.correlation_id, record.hold_until, near)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "received_at": self.received_at,
                "source": self.source, "reason": self.reason,
                "signal_id": self.signal_id, "correlation_id": self.correlation_id,
                "hold_until": self.hold_until, "near": self.near}


@dataclass(frozen=True)
class Owner:
    """The agent that runs a running instance, as the store knows it."""

    agent_id: str | None
    #: alive (its lease runs), lease lost, stopped, unknown (no row), none (no owner)
    state: str
    host: str | None = None
    pool: str | None = None
    lease_until: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"agent_id": self.agent_id, "state": self.state, "host": self.host,
                "pool": self.pool, "lease_until": self.lease_until}


@dataclass(frozen=True)
class Explanation:
    """Why one instance is where it is."""

    instance_id: str
    process: str
    status: str
    waits_for: WaitKind
    #: one sentence: what it waits for (or how it ended), plain text
    reason: str
    #: when it got where it is: paused_at, the running step's start, ended_at
    since: str | None
    #: its checkpoint's TTL end, and its next scheduled resume
    expires_at: str | None = None
    resume_at: str | None = None
    correlation_id: str | None = None
    #: the checkpoint step it is paused at (or that a retry starts from)
    step_id: str | None = None
    #: what the TTL does when it runs out: "fail", "resume" (with `expiry_payload`)
    on_expire: str | None = None
    expiry_payload: Any = None
    #: the child a parent paused at a call waits for (agent/summary.py waiting_for)
    child: dict[str, Any] | None = None
    owner: Owner | None = None
    #: the step a running instance is in (its id, kind), from its history
    running_step: tuple[str, str] | None = None
    error: dict[str, Any] | None = None
    signals: tuple[SignalNote, ...] = ()
    #: how many signals there were in all (only the newest SIGNALS_SHOWN are kept)
    signals_total: int = 0
    commands: tuple[Command, ...] = ()
    #: the definition the instance runs (None: it could not be read again)
    definition: Definition | None = field(default=None, compare=False)
    #: a shared store (PostgreSQL): several agents, leases
    shared: bool = False
    #: the instance whose call step runs this one (a child's)
    parent_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id, "process": self.process,
            "status": self.status, "waits_for": self.waits_for, "reason": self.reason,
            "since": self.since, "expires_at": self.expires_at,
            "resume_at": self.resume_at, "correlation_id": self.correlation_id,
            "step_id": self.step_id,
            "at_expiry": (None if self.on_expire is None else
                          {"action": self.on_expire,
                           "payload": values.to_plain(self.expiry_payload)}),
            "child": self.child,
            "owner": None if self.owner is None else self.owner.to_json(),
            "running_step": (None if self.running_step is None else
                             {"step_id": self.running_step[0],
                              "kind": self.running_step[1]}),
            "error": self.error,
            "signals": [s.to_json() for s in self.signals],
            "signals_total": self.signals_total,
            "commands": [c.to_json() for c in self.commands],
            "parent_id": self.parent_id,
        }


def explain(store: StoreContract, instance_id: str) -> Explanation:
    """Read what explains `instance_id` (a unique prefix will do; NotFound otherwise)."""
    record = store.get_instance(instance_id)
    checkpoint = store.find_checkpoint(record.id)
    signals = signals_for(store, record, checkpoint)
    child = waiting_for(record, store.get_instance)
    owner = (owner_of(record, store.list_agents())
             if record.status == Status.RUNNING else None)
    events = store.events(record.id) if record.status == Status.RUNNING else []
    return build(record, checkpoint, signals, child=child, owner=owner,
                 running_step=running_step(events), definition=stored_definition(
                     store, record.definition_sha256), shared=store.shared)


def build(record: InstanceRecord, checkpoint: CheckpointRecord | None,
          signals: list[SignalRecord], *, child: dict[str, Any] | None = None,
          owner: Owner | None = None, running_step: tuple[str, str, str] | None = None,
          definition: Definition | None = None, shared: bool = False) -> Explanation:
    """The explanation of what was read (no I/O)."""
    status = str(record.status)
    base: dict[str, Any] = {
        "instance_id": record.id, "process": record.process_name, "status": status,
        "signals": tuple(SignalNote.of(s, near=not _for_it(s, record, checkpoint))
                         for s in signals[:SIGNALS_SHOWN]),
        "signals_total": len(signals), "definition": definition, "shared": shared,
        "parent_id": record.parent_id,
        "error": json.loads(record.error_json) if record.error_json else None,
    }
    if checkpoint is not None:
        base.update(correlation_id=checkpoint.correlation_id, step_id=checkpoint.step_id,
                    expires_at=checkpoint.expires_at)
        if checkpoint.expires_at is not None:
            decision = decide_expiry(status, checkpoint.on_expire_json)
            if isinstance(decision, ResumeWith):
                base.update(on_expire="resume",
                            expiry_payload=values.decode(decision.payload))
            else:
                base["on_expire"] = "fail"
    if record.status == Status.PAUSED:
        return _paused(record, checkpoint, child, base)
    if record.status == Status.RUNNING:
        return _running(record, owner, running_step, base)
    return _ended(record, checkpoint, base)


def _paused(record: InstanceRecord, checkpoint: CheckpointRecord | None,
            child: dict[str, Any] | None, base: dict[str, Any]) -> Explanation:
    rid = record.id
    show = Command("show", ("show", rid), "its history and stored variables")
    cancel = Command("cancel", ("cancel", rid, "--reason", "TEXT"),
                     "cancel it for good")
    if checkpoint is None:  # held by on_crash = "hold"
        error = base["error"] or {}
        why = f": {error['message']}" if error.get("message") else ""
        return Explanation(
            **base, waits_for="retry", since=record.paused_at,
            reason=f"held after a crash (on_crash = \"hold\"){why}; it waits for a "
                   "person to retry it",
            commands=(Command("retry", ("retry", rid), "run it again from the beginning, "
                              "with the same params"), cancel, show))
    if child is not None:
        target = child["instance_id"]
        reason = (f"it waits for its child instance {child['child_id']} "
                  f"({child['process']}, {child['status']}) to end: the call goes on "
                  "when it does")
        if target != child["child_id"]:
            reason = (f"it waits for its child instance {child['child_id']}, which waits "
                      f"(through {len(child['chain']) - 1} more call(s)) for "
                      f"{target} ({child['process']}), {child['status']}")
        commands = [Command("explain", ("explain", target),
                            f"why {target} is where it is")]
        if child.get("correlation_id") and child["status"] == Status.PAUSED:
            commands.append(Command("resume", ("resume", "--correlation-id",
                                               child["correlation_id"]),
                                    f"resume {target}, which wakes this one"))
        return Explanation(**base, waits_for="child", since=record.paused_at,
                           reason=reason, child=child, commands=(*commands, cancel, show))
    follow = Command("follow", ("follow", rid), "print its steps as it runs on")
    resume = Command("resume", ("resume", "--correlation-id", checkpoint.correlation_id),
                     "resume it now with a signal")
    if checkpoint.resume_at is not None:
        reason = (f"it waits for the clock (a scheduled resume), or for a signal to "
                  f"correlation ID {checkpoint.correlation_id} before then")
        return Explanation(**base, waits_for="clock", since=record.paused_at,
                           resume_at=checkpoint.resume_at, reason=reason,
                           commands=(resume, cancel, follow, show))
    return Explanation(
        **base, waits_for="signal", since=record.paused_at,
        reason=f"it waits for a signal to correlation ID {checkpoint.correlation_id}",
        commands=(resume, cancel, follow, show))


def _running(record: InstanceRecord, owner: Owner | None,
             step: tuple[str, str, str] | None, base: dict[str, Any]) -> Explanation:
    rid = record.id
    since = step[2] if step is not None else record.updated_at
    where = f"step {step[0]} ({step[1]})" if step is not None else "its steps"
    commands = [Command("follow", ("follow", rid), "print its steps as it runs on"),
                Command("wait", ("wait", rid), "wait until it pauses or ends"),
                Command("cancel", ("cancel", rid, "--reason", "TEXT"),
                        "stop it now (its finally blocks run)"),
                Command("show", ("show", rid), "its history")]
    state = owner.state if owner is not None else "none"
    pool = f" of pool {record.pool}" if record.pool else ""
    if state == "alive":
        assert owner is not None
        host = f" on {owner.host}" if owner.host else ""
        reason = f"it runs {where} on agent {owner.agent_id}{host}"
    elif state == "none" and base["shared"]:
        reason = (f"it waits for an agent{pool} to take it over (it was handed over, "
                  f"in {where})")
        commands.insert(0, Command("agent", ("agent", "start"),
                                   f"start an agent{pool} here, if none runs"))
    elif state == "none":
        reason = (f"it runs {where} on the home's agent (if none runs, the next agent "
                  "start recovers it)")
    else:
        assert owner is not None
        gone = {"stopped": "stopped", "lease lost": "lost its lease",
                "unknown": "is unknown to the store"}[state]
        then = ("another live agent" + pool + " takes it over" if base["shared"] else
                "the next agent start recovers it (from its last checkpoint, if it "
                "saved one)")
        reason = (f"its agent {owner.agent_id} {gone} while it ran {where}: {then}")
        commands.insert(0, Command("agent", ("agent", "start"),
                                   "start an agent (it recovers the instance)"))
    return Explanation(**base, waits_for="agent", since=since, owner=owner,
                       running_step=None if step is None else (step[0], step[1]),
                       reason=reason, commands=tuple(commands))


def _ended(record: InstanceRecord, checkpoint: CheckpointRecord | None,
           base: dict[str, Any]) -> Explanation:
    rid = record.id
    show = Command("show", ("show", rid), "its history, params and result or error")
    error = base["error"] or {}
    if record.status == Status.COMPLETED:
        return Explanation(**base, waits_for="nothing", since=record.ended_at,
                           reason="it completed: nothing moves it on", commands=(show,))
    if record.status != Status.FAILED:  # cancelled (who asked, why)
        by = f" by {error['by']}" if error.get("by") else ""
        told = error.get("reason") or error.get("message")
        why = f" ({told})" if told and told != str(record.status) else ""
        return Explanation(**base, waits_for="nothing", since=record.ended_at,
                           reason=f"it was {record.status}{by}{why}: signals for it are "
                                  "refused, nothing moves it on", commands=(show,))
    where = f" at step {error['step_id']}" if error.get("step_id") else ""
    kind = f" ({error['kind']})" if error.get("kind") else ""
    reason = f"it failed{where}{kind}: {error.get('message') or 'no message'}"
    if error.get("kind") == "expired":
        return Explanation(**base, waits_for="nothing", since=record.ended_at,
                           reason=reason + "; it cannot be retried (run the process "
                                           "again with procctl run)", commands=(show,))
    how = ("from its checkpoint " + checkpoint.step_id + ", through its recover block"
           if checkpoint is not None else "from the beginning, with the same params")
    commands = [Command("retry", ("retry", rid), f"run it again {how}")]
    if checkpoint is not None:
        commands.append(Command("resume", ("resume", "--correlation-id",
                                           checkpoint.correlation_id),
                                "resume it from its checkpoint with a payload (--data)"))
    return Explanation(**base, waits_for="nothing", since=record.ended_at,
                       reason=reason, commands=(*commands, show))


def _correlation_ids(record: InstanceRecord,
                     checkpoint: CheckpointRecord | None) -> set[str]:
    return {cid for cid in (record.correlation_id,
                            checkpoint.correlation_id if checkpoint else None) if cid}


def _for_it(signal: SignalRecord, record: InstanceRecord,
            checkpoint: CheckpointRecord | None) -> bool:
    return (signal.instance_id == record.id
            or signal.correlation_id in _correlation_ids(record, checkpoint))


def _near(signal: SignalRecord, ids: set[str]) -> bool:
    """A signal held for no instance, unmatched or refused, to a correlation ID like
    one of `ids`."""
    sent = signal.correlation_id
    return (sent is not None and signal.instance_id is None
            and signal.status in (SignalStatus.UNMATCHED, SignalStatus.REJECTED,
                                  SignalStatus.PENDING)
            and any(difflib.SequenceMatcher(None, sent, cid).ratio() >= NEAR_RATIO
                    for cid in ids))


def signals_for(store: StoreContract, record: InstanceRecord,
                checkpoint: CheckpointRecord | None) -> list[SignalRecord]:
    """The held, refused, unmatched and repeated signals for this instance (by its ID,
    or by its correlation IDs), and the unmatched or refused ones sent to a correlation
    ID like its own, newest first. Read from the newest SIGNALS_READ records: older
    ones are left out."""
    ids = _correlation_ids(record, checkpoint)
    return [s for s in store.list_signals(NOTED_SIGNALS, limit=SIGNALS_READ)
            if _for_it(s, record, checkpoint) or _near(s, ids)]


def owner_of(record: InstanceRecord, agents: list[AgentRecord]) -> Owner:
    """The agent that owns a running instance, and the state of its lease."""
    if record.owner is None:
        return Owner(None, "none", pool=record.pool)
    for agent in agents:
        if agent.id == record.owner:
            state = ("stopped" if agent.stopped_at else
                     "alive" if agent.alive else "lease lost")
            return Owner(agent.id, state, agent.host, agent.pool, agent.lease_until)
    return Owner(record.owner, "unknown")


def running_step(events: list[EventRecord]) -> tuple[str, str, str] | None:
    """The innermost step still running at the end of `events`: (id, kind, started)."""
    open_steps: dict[str, tuple[str, str, str]] = {}
    for event in events:
        path = event.step_path
        if path is None or event.step_id is None:
            continue
        if event.kind == "step_started":
            data = json.loads(event.data_json)
            open_steps[path] = (event.step_id, str(data.get("kind", "")), event.at)
        elif event.kind in ("step_finished", "step_failed"):
            open_steps.pop(path, None)
    return max(open_steps.values(), key=lambda s: s[2], default=None)


def stored_definition(store: StoreContract, sha256: str) -> Definition | None:
    """The definition an instance runs, as pinned in the store (with what its calls
    run); None when it cannot be read again (a later procctl refusing an old text)."""
    try:
        return pinned_definition(store.get_definition, sha256)
    except (DefinitionError, StoreError, ValueError):
        return None
