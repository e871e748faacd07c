"""Plain frozen records returned by the store. Payload fields hold JSON text."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    """An instance's status: the store's one vocabulary for `instances.status`.

    running -> paused -> running ... -> completed | failed | cancelled; a failed
    instance that kept its snapshot may run again (retry). `procctl cancel` moves a
    running or paused instance to cancelled (store/cancelling.py); a cancelled instance
    keeps no checkpoint and never runs again.
    """

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


#: an instance in one of these has ended (a failed one may still be retried)
TERMINAL_STATUSES: frozenset[Status] = frozenset(
    {Status.COMPLETED, Status.FAILED, Status.CANCELLED})


class SignalStatus(StrEnum):
    """A signal's status (`signals.status`) and the outcome of a delivery.

    A *held* signal is a pending one: kept until its instance pauses (`instance_id` set
    for a pausing checkpoint's) or until `hold_until`, then applied or unmatched.
    """

    PENDING = "pending"
    APPLIED = "applied"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"
    UNMATCHED = "unmatched"

#: a history event as the store writes it: (instance_id, at, kind, data_json, step_id,
#: step_path)
EventRow = tuple[str, str, str, str, str | None, str | None]


@dataclass(frozen=True)
class DefinitionRecord:
    sha256: str
    name: str
    version: str | None
    path: str | None
    source: str
    created_at: str
    #: the definitions its `call` steps run: the call's file -> their hash
    children_json: str | None = None


@dataclass(frozen=True)
class InstanceRecord:
    id: str
    definition_sha256: str
    process_name: str
    process_version: str | None
    status: Status
    params_json: str
    trigger_json: str
    started_at: str
    updated_at: str
    ended_at: str | None
    result_json: str | None
    error_json: str | None
    paused_at: str | None = None
    correlation_id: str | None = None
    #: for a child instance (a `call` step's): its parent and the call's position
    parent_id: str | None = None
    call_key: str | None = None
    #: the agent that runs it (a running instance's; see store/agents.py) and how many
    #: times it was taken over (each takeover adds one)
    owner: str | None = None
    epoch: int = 0
    #: the pool of agents that may run it (None: any agent)
    pool: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", Status(self.status))  # a row's text


@dataclass(frozen=True)
class EventRecord:
    id: int
    instance_id: str
    at: str
    kind: str
    step_id: str | None
    step_path: str | None
    data_json: str


@dataclass(frozen=True)
class CheckpointRecord:
    instance_id: str
    step_id: str
    correlation_id: str
    snapshot_json: str
    size: int
    iteration: int
    created_at: str
    expires_at: str | None
    resume_at: str | None
    on_expire_json: str | None
    commit_value_json: str | None
    #: the payload (typed JSON) of the resume the instance runs on from, if any
    resume_payload_json: str | None = None
    #: 1: the checkpoint pauses and the instance has not paused at it yet (see
    #: docs/reliability.md, "A pausing checkpoint pauses")
    pausing: int = 0
    #: the payload the checkpoint declares (`expects`), as
    #: agent/definition/payload_fields.py writes it; None: any payload
    expects_json: str | None = None


@dataclass(frozen=True)
class SignalRecord:
    id: str
    signal_id: str | None
    correlation_id: str | None
    payload_json: str | None
    set_json: str | None
    source: str
    status: str  # a SignalStatus (converted from a row's text)
    reason: str | None
    instance_id: str | None
    received_at: str
    hold_until: str | None
    resolved_at: str | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", SignalStatus(self.status))


@dataclass(frozen=True)
class PausedRow:
    """One line of `list-paused`: an instance and its checkpoint."""

    instance: InstanceRecord
    checkpoint: CheckpointRecord


@dataclass(frozen=True)
class Delivery:
    """What became of a signal: `outcome` is a SignalStatus (applied, pending, rejected or
    duplicate).

    For an applied signal, `checkpoint` is the (possibly edited) checkpoint to resume
    from and `from_status` the status the instance left (paused, or failed for a retry).
    """

    outcome: str
    signal: SignalRecord
    reason: str | None = None
    instance_id: str | None = None
    checkpoint: CheckpointRecord | None = None
    from_status: str | None = None


@dataclass(frozen=True)
class AgentRecord:
    """An agent that shares the store (`procctl agents`): its lease says it is alive."""

    id: str
    host: str
    pool: str
    home: str
    pid: int
    version: str
    started_at: str
    #: when its lease ends (ISO UTC, the store's clock)
    lease_until: str
    stopped_at: str | None
    #: its lease is current and it has not stopped
    alive: bool
    #: running instances it owns
    owned: int
