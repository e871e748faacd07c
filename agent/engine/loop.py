"""The `foreach` step: run `body` once per item; the results form a list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ForeachStep
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_foreach_step(runner: Runner, step: ForeachStep, state: InstanceState) -> Any:
    items = step.items.evaluate(state.context(step))
    if isinstance(items, dict):
        items = list(items.items())
    if not isinstance(items, list | tuple | str | range):
        raise StepFailed(f"items gave a {type(items).__name__}, not a list",
                         step_id=step.id, step_path=step.path)
    # Loop variables exist only inside the loop; a variable of the same name set before
    # the loop (a param, say) is shadowed, not lost.
    missing = object()
    shadowed = {name: state.variables.get(name, missing) for name in step.loop_vars()}
    collected: list[Any] = []
    for index, item in enumerate(items):
        state.variables[step.item_var] = item
        if step.index_var:
            state.variables[step.index_var] = index
        state.last_result = None
        await runner.run_block(step.body, state)
        collected.append(state.last_result)
    for name, previous in shadowed.items():
        if previous is missing:
            state.variables.pop(name, None)
        else:
            state.variables[name] = previous
    return collected
