"""The `if` step: run `then` when the condition holds, else `else`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import IfStep
from procctl.agent.engine.state import InstanceState
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_if_step(runner: Runner, step: IfStep, state: InstanceState,
                      resume: list[Frame] | None = None) -> Any:
    """The step's result is the `result` left by the branch that ran (None if none ran).

    On a resume the frame names the branch that was running: the condition is not
    evaluated again.
    """
    if resume:
        name = resume[0].block
    else:
        name = "then" if step.condition.evaluate(state.context(step)) else "else"
        state.last_result = None
    block = step.then if name == "then" else step.else_
    await runner.run_block(block, name, state, resume)
    return state.last_result
