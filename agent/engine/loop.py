"""Loops: `foreach` (once per item) and `while` (while a condition holds, at most
`max_iterations` times). A `return` in the body ends that iteration with a value;
the loop's result is the list of its iterations' values.

The body's frame carries the loop: the items (foreach), the current iteration, the
values so far and the variables the loop variables shadow. A resume goes on in the
same iteration with all of it intact.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ForeachStep, WhileStep
from procctl.agent.engine.evaluation import evaluate
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


def _shadow(state: InstanceState, names: frozenset[str]) -> dict[str, Any]:
    """Loop variables exist only inside the loop; a variable of the same name set
    before it (a param, say) is shadowed, not lost: the frame keeps it."""
    return {name: state.variables[name] for name in names if name in state.variables}


def _unshadow(state: InstanceState, names: frozenset[str], loop: dict[str, Any]) -> None:
    for name in names:
        state.variables.pop(name, None)
    state.variables.update(loop.get("shadowed", {}))


async def run_foreach_step(runner: Runner, step: ForeachStep, state: InstanceState,
                           resume: list[Frame] | None = None) -> Any:
    if resume and resume[0].loop is not None:
        loop = copy.deepcopy(resume[0].loop)
        items = loop["items"]
    else:
        items = await evaluate(step.items, state.context(step))
        if isinstance(items, dict):
            items = [list(pair) for pair in items.items()]
        if isinstance(items, str | range | tuple):
            items = list(items)
        if not isinstance(items, list):
            raise StepFailed(f"items gave a {type(items).__name__}, not a list",
                             step_id=step.id, step_path=step.path)
        loop = {"items": items, "index": 0, "results": [],
                "shadowed": _shadow(state, step.loop_vars())}
        resume = None
    for index in range(int(loop["index"]), len(items)):
        loop["index"] = index
        state.variables[step.item_var] = items[index]
        if step.index_var:
            state.variables[step.index_var] = index
        value = await runner.block_value(step.body, "body", state, resume, loop)
        resume = None
        loop["results"].append(value)
    _unshadow(state, step.loop_vars(), loop)
    return list(loop["results"])


async def run_while_step(runner: Runner, step: WhileStep, state: InstanceState,
                         resume: list[Frame] | None = None) -> Any:
    """The condition is checked before each iteration (with `index_as` already set to
    the iteration's number); when it still holds after `max_iterations`, the step
    fails rather than loop on."""
    if resume and resume[0].loop is not None:
        loop = copy.deepcopy(resume[0].loop)
    else:
        loop = {"index": 0, "results": [], "shadowed": _shadow(state, step.loop_vars())}
        resume = None
    while True:
        if resume is None:
            index = int(loop["index"])
            if step.index_var:
                state.variables[step.index_var] = index
            if not await evaluate(step.condition, state.context(step)):
                break
            if index >= step.max_iterations:
                raise StepFailed(
                    f"the condition {step.condition.source!r} still holds after "
                    f"max_iterations = {step.max_iterations}",
                    step_id=step.id, step_path=step.path, kind="max_iterations")
        value = await runner.block_value(step.body, "body", state, resume, loop)
        resume = None
        loop["results"].append(value)
        loop["index"] = int(loop["index"]) + 1
    _unshadow(state, step.loop_vars(), loop)
    return list(loop["results"])
