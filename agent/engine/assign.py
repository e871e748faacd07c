"""The `set` step: assign variables from expressions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import SetStep
from procctl.agent.engine.evaluation import render
from procctl.agent.engine.state import InstanceState
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_set_step(runner: Runner, step: SetStep, state: InstanceState,
    resume: list[Frame] | None = None,
) -> Any:
    """Values are evaluated in order; a later one sees the earlier ones."""
    assigned: dict[str, Any] = {}
    for name, raw in step.values:
        value = await render(raw, state.context(step))
        state.variables[name] = value
        assigned[name] = value
    return assigned
