"""`return` and `throw`: end the process with a value or an error."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from procctl.agent.definition.model import IntermediateReturnStep, ReturnStep, ThrowStep
from procctl.agent.engine.evaluation import evaluate, render
from procctl.agent.engine.state import InstanceState, ReturnFromProcess
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_return_step(runner: Runner, step: ReturnStep, state: InstanceState,
    resume: list[Frame] | None = None,
) -> NoReturn:
    value = await render(step.value, state.context(step))
    state.results[step.id] = value
    state.last_result = value
    raise ReturnFromProcess(value)


async def run_throw_step(runner: Runner, step: ThrowStep, state: InstanceState,
    resume: list[Frame] | None = None,
) -> Any:
    message = await evaluate(step.message, state.context(step))
    raise StepFailed(str(message), step_id=step.id, step_path=step.path, kind="thrown")


async def run_intermediate_return_step(runner: Runner, step: IntermediateReturnStep,
                                       state: InstanceState,
                                       resume: list[Frame] | None = None) -> Any:
    """Hand a value to `run --wait` (and the history); the process goes on."""
    value = await render(step.value, state.context(step))
    await runner.emit("intermediate_return", step, {"value": value})
    return value
