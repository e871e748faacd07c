"""What a running instance carries from step to step, and how the engine stops."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from procctl.agent.definition.model import Definition, Step
from procctl.agent.engine.frames import StateSource
from procctl.agent.snapshot import Frame, Snapshot

#: emit(kind, step, data): record an event in the instance's history and tell watchers.
EventSink = Callable[[str, Step | None, dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class Cancellation:
    """A person's request to cancel a running instance (`procctl cancel`): who asked
    (`cli:USER@HOST`) and why (optional)."""

    by: str
    reason: str | None = None

    def message(self) -> str:
        why = f" (reason: {self.reason})" if self.reason else ""
        return f"cancelled by {self.by}{why}"

    def error(self) -> dict[str, Any]:
        """The error a cancelled instance ends with (its `error_json`)."""
        return {"kind": "cancelled", "message": self.message(), "by": self.by,
                "reason": self.reason}


class EngineHooks(Protocol):
    """What the engine asks of the agent around checkpoints (bound to one instance)."""

    #: set when a person cancelled the instance: the run stops at once, the `finally`
    #: blocks of the scopes it is in run, and it ends `cancelled` (a CancelledError
    #: without it is the agent's shutdown: nothing more runs)
    cancellation: Cancellation | None

    async def save_checkpoint(self, step: Step, snapshot: Snapshot, *,
                              expires_at: str | None, on_expire_json: str | None,
                              resume_at: str | None = None, pausing: bool = False) -> int:
        """Commit the snapshot durably; returns its size in bytes. `pausing`: the
        instance pauses at it (at `resume_at`, if any, the clock resumes it)."""
        ...

    async def pause(self, step: Step, event: dict[str, Any], *, commit_value: Any,
                    resume_at: str | None) -> None:
        """Mark the instance paused, with its instance_paused event (`event` its data),
        in one transaction (after this the coroutine ends)."""
        ...

    async def send_signal(self, *, correlation_id: str, payload: Any,
                          signal_id: str | None) -> dict[str, Any]:
        """Resume another instance; returns what became of the signal."""
        ...

    async def start_child(self, definition: Definition, params: dict[str, Any],
                          call_key: str) -> str:
        """Start a child instance for a `call` (or find the one this call started
        before a restart); returns its id."""
        ...

    async def wait_child(self, instance_id: str, *, until_paused: bool) -> dict[str, Any]:
        """Wait until a child instance completes or fails (or, with `until_paused`,
        pauses): its status, result and error."""
        ...


@dataclass
class FrameCursor:
    """The live form of a position Frame: `index` moves as the block runs; `state` is
    the enclosing step's frame state (or the live form its loop keeps)."""

    block: str
    index: int
    state: StateSource | None = None

    def freeze(self) -> Frame:
        """The frame as it stands: frame states are immutable, so nothing is copied
        (a loop hands over its values so far as a new tuple)."""
        return Frame(self.block, self.index,
                     None if self.state is None else self.state.frozen())


@dataclass
class CheckpointInfo:
    """The instance's last checkpoint, as later steps (scheduled_resume) need it."""

    step_id: str
    correlation_id: str
    iteration: int
    value: Any = None


@dataclass(frozen=True)
class ResumeInfo:
    """How an instance is being resumed from its snapshot."""

    snapshot: Snapshot
    resumed_by: str  # signal, schedule, manual, recovery, expiry
    payload: Any
    commit_value: Any
    iteration: int
    run_recover: bool
    #: a checkpoint that had not paused yet when the agent stopped: run its recover
    #: block, then pause there again (until `resume_at`, as when it was saved)
    pause_again: bool = False
    resume_at: str | None = None


@dataclass
class InstanceState:
    """Variables, step results, the last result and the position of one instance.

    `results` maps a step id to that step's latest result (Frends' named #result);
    `last_result` is what expressions see as `result`; `frames` is the position.
    """

    instance_id: str
    process: dict[str, Any]
    base_dir: Path
    variables: dict[str, Any] = field(default_factory=dict)
    results: dict[str, Any] = field(default_factory=dict)
    last_result: Any = None
    frames: list[FrameCursor] = field(default_factory=list)
    checkpoint: CheckpointInfo | None = None
    #: a parallel branch's state: it cannot pause while the other branches run
    in_branch: bool = False

    def context(self, step: Step | None = None, attempt: int = 1) -> dict[str, Any]:
        """The names an expression can read."""
        context = dict(self.variables)
        context["result"] = self.last_result
        # A copy: `{{ results }}` must not hand out the live dict, which the engine goes on
        # filling (a `return` of it would then contain itself and could not be stored).
        context["results"] = dict(self.results)
        context["process"] = self.process
        if step is not None:
            context["step"] = {
                "id": step.id,
                "attempt": attempt,
                "idempotency_key": f"{self.instance_id}:{step.id}:{attempt}",
            }
        return context

    def position(self) -> tuple[Frame, ...]:
        return tuple(cursor.freeze() for cursor in self.frames)

    def fork(self) -> InstanceState:
        """A parallel branch's state: its own copy of the variables and results, the
        same position so far (the branch's frames go on its own list)."""
        return InstanceState(self.instance_id, self.process, self.base_dir,
                             variables=dict(self.variables), results=dict(self.results),
                             last_result=None, frames=list(self.frames),
                             checkpoint=self.checkpoint, in_branch=True)

    def can_pause(self) -> bool:
        """Whether the instance may pause where it stands: not in a parallel branch,
        nor in a checkpoint's commit or recover block."""
        return not self.in_branch and not any(
            cursor.block in ("commit", "recover") for cursor in self.frames)

    def loop_iterations(self) -> list[int]:
        """The iteration of each loop around the current step, from 1, outermost first
        ([] outside loops): the progress lines show where a step is."""
        found: list[int] = []
        for cursor in self.frames:
            iteration = None if cursor.state is None else cursor.state.iteration()
            if iteration is not None:
                found.append(iteration + 1)
        return found

    def call_key(self, step: Step) -> str:
        """Where a `call` step stands, iteration included: the same call reached again
        after a restart has the same key, and so finds the child it started."""
        parts = []
        for cursor in self.frames:
            part = f"{cursor.block}:{cursor.index}"
            iteration = None if cursor.state is None else cursor.state.iteration()
            if iteration is not None:
                part += f"@{iteration}"
            parts.append(part)
        return "/".join((*parts, step.id))


class ReturnFromProcess(Exception):
    """A `return` step ends the innermost body that takes a value (a loop's iteration,
    a scope, a parallel branch, a checkpoint's commit or recover block) or, outside
    them all, the process."""

    def __init__(self, value: Any) -> None:
        super().__init__("return")
        self.value = value


class PauseInstance(Exception):
    """The instance paused: its state is in the store, the coroutine ends."""


class InstanceCancelled(BaseException):
    """A person cancelled the instance. Not an Exception: no `catch` and no task's
    error handling takes it; a scope runs its `finally` and passes it on, and the run
    ends `cancelled`."""

    def __init__(self, cancellation: Cancellation) -> None:
        super().__init__(cancellation.message())
        self.cancellation = cancellation
