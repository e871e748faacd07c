"""Runs one instance of a definition, step by step, as a coroutine."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from procctl.agent.definition.model import (
    Definition,
    ForeachStep,
    IfStep,
    ReturnStep,
    SetStep,
    Step,
    TaskStep,
    ThrowStep,
)
from procctl.agent.engine import assign, branch, flow, loop, task
from procctl.agent.engine.state import EventSink, InstanceState, ReturnFromProcess
from procctl.agent.errors import ExpressionError, StepFailed

log = logging.getLogger("procctl.engine")

StepHandler = Callable[["Runner", Any, InstanceState], Awaitable[Any]]

HANDLERS: dict[type[Step], StepHandler] = {
    TaskStep: task.run_task_step,
    SetStep: assign.run_set_step,
    IfStep: branch.run_if_step,
    ForeachStep: loop.run_foreach_step,
    ReturnStep: flow.run_return_step,
    ThrowStep: flow.run_throw_step,
}


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | failed
    result: Any = None
    error: dict[str, Any] | None = None


class Runner:
    """Executes a definition for one instance and reports events through `emit`."""

    def __init__(self, definition: Definition, state: InstanceState, emit: EventSink) -> None:
        self.definition = definition
        self.state = state
        self.emit = emit

    async def run(self) -> Outcome:
        try:
            await self.run_block(self.definition.steps, self.state)
        except ReturnFromProcess as done:
            return Outcome("completed", result=done.value)
        except StepFailed as failure:
            return Outcome("failed", error={
                "kind": failure.kind, "message": failure.message,
                "step_id": failure.step_id, "step_path": failure.step_path,
            })
        return Outcome("completed", result=self.state.last_result)

    async def run_block(self, steps: tuple[Step, ...], state: InstanceState) -> None:
        for step in steps:
            await self.run_step(step, state)

    async def run_step(self, step: Step, state: InstanceState) -> None:
        handler = HANDLERS[type(step)]
        await self.emit("step_started", step, {"kind": step.kind})
        started = time.monotonic()
        try:
            value = await handler(self, step, state)
        except ReturnFromProcess:
            await self.emit("step_finished", step, {"duration": time.monotonic() - started})
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
