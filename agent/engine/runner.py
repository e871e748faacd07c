"""Runs one instance of a definition, step by step, as a coroutine.

A run starts at the first step, or resumes from a snapshot's position: the frames
say which step of which block was running, down to the checkpoint to go on after.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from procctl.agent.definition.model import (
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
from procctl.agent.engine.state import (
    EngineHooks,
    EventSink,
    FrameCursor,
    InstanceState,
    PauseInstance,
    ResumeInfo,
    ReturnFromProcess,
)
from procctl.agent.errors import ExpressionError, StepFailed
from procctl.agent.snapshot import Frame
from procctl.store.records import Status

log = logging.getLogger("procctl.engine")

#: handler(runner, step, state, resume): resume is the rest of the position inside
#: this step when the instance resumes into it, else None.
StepHandler = Callable[["Runner", Any, InstanceState, "list[Frame] | None"], Awaitable[Any]]

HANDLERS: dict[type[Step], StepHandler] = {
    TaskStep: task.run_task_step,
    SetStep: assign.run_set_step,
    IfStep: branch.run_if_step,
    SwitchStep: branch.run_switch_step,
    InclusiveStep: branch.run_inclusive_step,
    ParallelStep: parallel.run_parallel_step,
    ForeachStep: loop.run_foreach_step,
    WhileStep: loop.run_while_step,
    ScopeStep: scope.run_scope_step,
    CallStep: call.run_call_step,
    IntermediateReturnStep: flow.run_intermediate_return_step,
    ReturnStep: flow.run_return_step,
    ThrowStep: flow.run_throw_step,
    CheckpointStep: checkpoint.run_checkpoint_step,
    ScheduledResumeStep: checkpoint.run_scheduled_resume_step,
    SignalStep: signal.run_signal_step,
}


@dataclass(frozen=True)
class Outcome:
    status: str  # a Status: completed | failed | paused
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
        return Outcome(Status.COMPLETED, result=self.state.last_result)

    async def run_block(self, steps: tuple[Step, ...], name: str, state: InstanceState,
                        resume: list[Frame] | None = None,
                        loop: dict[str, Any] | None = None) -> None:
        """Run a block from its start, or from the frame `resume[0]` points at."""
        start = resume[0].index if resume else 0
        inner = resume[1:] if resume else None
        cursor = FrameCursor(name, start, loop)
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

    async def block_value(self, steps: tuple[Step, ...], name: str, state: InstanceState,
                          resume: list[Frame] | None = None,
                          loop: dict[str, Any] | None = None) -> Any:
        """Run a block a `return` ends (a loop iteration, a scope's blocks, a parallel
        branch, a checkpoint's commit or recover): its value is what the `return`
        gives, else the `result` its last step left."""
        if resume is None:
            state.last_result = None
        try:
            await self.run_block(steps, name, state, resume, loop)
        except ReturnFromProcess as done:
            state.last_result = done.value
            return done.value
        return state.last_result

    async def resume_after_checkpoint(self, step: Step, state: InstanceState) -> None:
        if isinstance(step, CallStep) and self.resume is not None:
            await self.guard(step, call.resume_call(self, step, state, self.resume), state)
            return
        if not isinstance(step, CheckpointStep) or self.resume is None:
            raise StepFailed(
                f"the snapshot's position points at {step.path} ({step.kind}), not at a "
                "checkpoint; the definition does not match the snapshot",
                step_id=step.id, step_path=step.path, kind="snapshot")
        await self.guard(step, checkpoint.resume_checkpoint(self, step, state, self.resume),
                         state)

    async def run_step(self, step: Step, state: InstanceState,
                       resume: list[Frame] | None = None) -> None:
        handler = HANDLERS[type(step)]
        if resume is None:
            await self.emit("step_started", step, {"kind": step.kind})
        await self.guard(step, handler(self, step, state, resume), state)

    async def guard(self, step: Step, work: Awaitable[Any], state: InstanceState) -> None:
        """Await a step's work; record its result, or its failure, against the step."""
        started = time.monotonic()
        try:
            value = await work
        except ReturnFromProcess:
            await self.emit("step_finished", step, {"duration": time.monotonic() - started})
            raise
        except PauseInstance:
            raise
        except StepFailed as failure:
            if failure.step_id is None:
                failure.step_id, failure.step_path = step.id, step.path
            if failure.step_id == step.id:
                await self.emit("step_failed", step, {"message": failure.message,
                                                      "kind": failure.kind})
            raise
        except ExpressionError as exc:
            await self.emit("step_failed", step, {"message": exc.message, "kind": "expression"})
            raise StepFailed(exc.message, step_id=step.id, step_path=step.path,
                             kind="expression") from exc
        state.results[step.id] = value
        if not isinstance(step, SetStep):
            state.last_result = value
        await self.emit("step_finished", step, {"duration": time.monotonic() - started})
