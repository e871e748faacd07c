"""The `foreach` step: run `body` once per item; the results form a list."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ForeachStep
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_foreach_step(runner: Runner, step: ForeachStep, state: InstanceState,
                           resume: list[Frame] | None = None) -> Any:
    """The body's frame carries the loop: items, current item index, results so far.

    A resume goes on in the same iteration, with the items evaluated when the loop
    started and the results of the iterations before it.
    """
    if resume and resume[0].loop is not None:
        loop = copy.deepcopy(resume[0].loop)
        items = loop["items"]
    else:
        items = step.items.evaluate(state.context(step))
        if isinstance(items, dict):
            items = [list(pair) for pair in items.items()]
        if isinstance(items, str | range | tuple):
            items = list(items)
        if not isinstance(items, list):
            raise StepFailed(f"items gave a {type(items).__name__}, not a list",
                             step_id=step.id, step_path=step.path)
        # Loop variables exist only inside the loop; a variable of the same name set
        # before it (a param, say) is shadowed, not lost: the frame keeps it.
        shadowed = {name: state.variables[name] for name in step.loop_vars()
                    if name in state.variables}
        loop = {"items": items, "index": 0, "results": [], "shadowed": shadowed}
        resume = None
    for index in range(int(loop["index"]), len(items)):
        loop["index"] = index
        state.variables[step.item_var] = items[index]
        if step.index_var:
            state.variables[step.index_var] = index
        if resume is None:
            state.last_result = None
        await runner.run_block(step.body, "body", state, resume, loop)
        resume = None
        loop["results"].append(state.last_result)
    for name in step.loop_vars():
        state.variables.pop(name, None)
    state.variables.update(loop.get("shadowed", {}))
    return list(loop["results"])
