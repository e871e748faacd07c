"""Runs one instance of a definition, step by step, as a coroutine.

A run starts at the first step, or resumes from a snapshot's position: the frames
say which step of which block was running, down to the checkpoint to go on after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, assert_never

from procctl.agent.definition.model import (
    AnyStep,
    CallStep,
    CheckpointStep,
    Definition,
    ForeachStep,
    IfStep,
    InclusiveStep,
    IntermediateReturnStep,
    ParallelStep,
    ReturnStep,
    ScheduledResumeStep,
    ScopeStep,
    SetStep,
    SignalStep,
    Step,
    SwitchStep,
    TaskStep,
    ThrowStep,
    WhileStep,
)
from procctl.agent.engine import (
    assign,
    branch,
    call,
    checkpoint,
    flow,
    loop,
    parallel,
    scope,
    signal,
    task,
)
from procctl.agent.engine.cancel import as_cancelled
from procctl.agent.engine.frames import StateSource
from procctl.agent.engine.state import (
    EngineHooks,
    EventSink,
    FrameCursor,
    InstanceCancelled,
    InstanceState,
    PauseInstance,
    ResumeInfo,
    ReturnFromProcess,
)
from procctl.agent.errors import ExpressionError, StepFailed
from procctl.agent.snapshot import Frame
from procctl.store.records import Status

log = logging.getLogger("procctl.engine")


def step_work(runner: Runner, step: AnyStep, state: InstanceState,
              resume: list[Frame] | None) -> Awaitable[Any]:
    """The work of one step: its kind's handler, called with the step's own class
    (`resume` is the rest of the position inside the step when the instance resumes
    into it, else None). The match is exhaustive: a kind added to AnyStep fails
    type-checking here until it has a handler."""
    match step:
        case TaskStep():
            return task.run_task_step(runner, step, state, resume)
        case SetStep():
            return assign.run_set_step(runner, step, state, resume)
        case IfStep():
            return branch.run_if_step(runner, step, state, resume)
        case SwitchStep():
            return branch.run_switch_step(runner, step, state, resume)
        case InclusiveStep():
            return branch.run_inclusive_step(runner, step, state, resume)
        case ParallelStep():
            return parallel.run_parallel_step(runner, step, state, resume)
        case ForeachStep():
            return loop.run_foreach_step(runner, step, state, resume)
        case WhileStep():
            return loop.run_while_step(runner, step, state, resume)
        case ScopeStep():
            return scope.run_scope_step(runner, step, state, resume)
        case CallStep():
            return call.run_call_step(runner, step, state, resume)
        case IntermediateReturnStep():
            return flow.run_intermediate_return_step(runner, step, state, resume)
        case ReturnStep():
            return flow.run_return_step(runner, step, state, resume)
        case ThrowStep():
            return flow.run_throw_step(runner, step, state, resume)
        case CheckpointStep():
            return checkpoint.run_checkpoint_step(runner, step, state, resume)
        case ScheduledResumeStep():
            return checkpoint.run_scheduled_resume_step(runner, step, state, resume)
        case SignalStep():
            return signal.run_signal_step(runner, step, state, resume)
        case _:
            assert_never(step)


def _loop(state: InstanceState) -> dict[str, Any]:
    """`{"loop": [2]}` for a step in a loop's second iteration (`[2, 1]` in the first
    iteration of a loop inside it), else nothing: its events say where it ran."""
    iterations = state.loop_iterations()
    return {"loop": iterations} if iterations else {}


@dataclass(frozen=True)
class Outcome:
    status: str  # a Status: completed | failed | paused | cancelled
    result: Any = None
    error: dict[str, Any] | None = None


class Runner:
    """Executes a definition for one instance and reports events through `emit`."""

    def __init__(self, definition: Definition, state: InstanceState, emit: EventSink,
                 hooks: EngineHooks, resume: ResumeInfo | None = None) -> None:
        self.definition = definition
        self.state = state
        self.emit = emit
        self.hooks = hooks
        self.resume = resume

    async def run(self) -> Outcome:
        position: list[Frame] | None = None
        if self.resume is not None:
            snapshot = self.resume.snapshot
            self.state.variables = dict(snapshot.variables)
            self.state.results = dict(snapshot.results)
            position = list(snapshot.position)
        try:
            await self.run_block(self.definition.steps, "steps", self.state, position)
        except ReturnFromProcess as done:
            return Outcome(Status.COMPLETED, result=done.value)
        except PauseInstance:
            return Outcome(Status.PAUSED)
        except StepFailed as failure:
            return Outcome(Status.FAILED, error={
                "kind": failure.kind, "message": failure.message,
                "step_id": failure.step_id, "step_path": failure.step_path,
            })
        except (asyncio.CancelledError, InstanceCancelled) as stop:
            cancelled = as_cancelled(self.hooks, stop)
            if cancelled is None:  # the agent stops: the instance stays running
                raise
            return Outcome(Status.CANCELLED, error=cancelled.cancellation.error())
        return Outcome(Status.COMPLETED, result=self.state.last_result)

    async def run_block(self, steps: tuple[AnyStep, ...], name: str, state: InstanceState,
                        resume: list[Frame] | None = None,
                        frame_state: StateSource | None = None) -> None:
        """Run a block from its start, or from the frame `resume[0]` points at;
        `frame_state` is what the enclosing step keeps in the block's frame."""
        start = resume[0].index if resume else 0
        inner = resume[1:] if resume else None
        cursor = FrameCursor(name, start, frame_state)
        state.frames.append(cursor)
        try:
            for index in range(start, len(steps)):
                cursor.index = index
                if inner is not None:
                    if inner:
                        await self.run_step(steps[index], state, inner)
                    else:
                        await self.resume_after_checkpoint(steps[index], state)
                    inner = None
                    continue
                await self.run_step(steps[index], state)
        finally:
            state.frames.pop()

    async def block_value(self, steps: tuple[AnyStep, ...], name: str,
                          state: InstanceState, resume: list[Frame] | None = None,
                          frame_state: StateSource | None = None) -> Any:
        """Run a block a `return` ends (a loop iteration, a scope's blocks, a parallel
        branch, a checkpoint's commit or recover): its value is what the `return`
        gives, else the `result` its last step left."""
        if resume is None:
            state.last_result = None
        try:
            await self.run_block(steps, name, state, resume, frame_state)
        except ReturnFromProcess as done:
            state.last_result = done.value
            return done.value
        return state.last_result

    async def resume_after_checkpoint(self, step: AnyStep, state: InstanceState) -> None:
        """Go on at the step the snapshot was taken at: a checkpoint, or a call whose
        child had paused; any other step means another definition's snapshot."""
        info = self.resume
        match step:
            case CallStep() if info is not None:
                work = call.resume_call(self, step, state, info)
            case CheckpointStep() if info is not None:
                work = checkpoint.resume_checkpoint(self, step, state, info)
            case _:
                raise StepFailed(
                    f"the snapshot's position points at {step.path} ({step.kind}), not at "
                    "a checkpoint; the definition does not match the snapshot",
                    step_id=step.id, step_path=step.path, kind="snapshot")
        await self.guard(step, work, state)

    async def run_step(self, step: AnyStep, state: InstanceState,
                       resume: list[Frame] | None = None) -> None:
        if resume is None:
            await self.emit("step_started", step, {"kind": step.kind, **_loop(state)})
        await self.guard(step, step_work(self, step, state, resume), state)

    async def guard(self, step: Step, work: Awaitable[Any], state: InstanceState) -> None:
        """Await a step's work; record its result, or its failure, against the step."""
        started = time.monotonic()
        try:
            value = await work
        except ReturnFromProcess:
            await self.emit("step_finished", step, {"duration": time.monotonic() - started,
                                                    **_loop(state)})
            raise
        except PauseInstance:
            raise
        except asyncio.CancelledError as stop:
            cancelled = as_cancelled(self.hooks, stop)
            if cancelled is None:
                raise
            await self.emit("step_cancelled", step, {"by": cancelled.cancellation.by,
                                                     "reason": cancelled.cancellation.reason})
            raise cancelled from None
        except StepFailed as failure:
            if failure.step_id is None:
                failure.step_id, failure.step_path = step.id, step.path
            if failure.step_id == step.id:
                await self.emit("step_failed", step, {"message": failure.message,
                                                      "kind": failure.kind, **_loop(state)})
            raise
        except ExpressionError as exc:
            await self.emit("step_failed", step, {"message": exc.message, "kind": "expression",
                                                  **_loop(state)})
            raise StepFailed(exc.message, step_id=step.id, step_path=step.path,
                             kind="expression") from exc
        state.results[step.id] = value
        if not isinstance(step, SetStep):
            state.last_result = value
        await self.emit("step_finished", step, {"duration": time.monotonic() - started,
                                                **_loop(state)})
