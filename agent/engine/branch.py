"""The `if` step: run `then` when the condition holds, else `else`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import IfStep
from procctl.agent.engine.state import InstanceState

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_if_step(runner: Runner, step: IfStep, state: InstanceState) -> Any:
    """The step's result is the `result` left by the branch that ran (None if none ran)."""
    holds = bool(step.condition.evaluate(state.context(step)))
    block = step.then if holds else step.else_
    state.last_result = None
    await runner.run_block(block, state)
    return state.last_result
