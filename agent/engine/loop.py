"""Loops: `foreach` (once per item) and `while` (while a condition holds, at most
`max_iterations` times). A `return` in the body ends that iteration with a value;
the loop's result is the list of its iterations' values.

The body's frame carries the loop (frames.ForeachState, WhileState): the items
(foreach), the current iteration, the values so far and the variables the loop
variables shadow. A resume goes on in the same iteration with all of it intact.
While it runs, a loop keeps its values so far in a list of its own (`LoopRun`); a
frozen position gets them as a tuple, and nothing else is copied: the items are a
tuple taken once, and no item is ever changed by the loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ForeachStep, WhileStep
from procctl.agent.engine.evaluation import evaluate
from procctl.agent.engine.frames import ForeachState, FrameState, WhileState
from procctl.agent.engine.resuming import state_of
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


@dataclass
class LoopRun:
    """A running loop's live state (the frame cursor's StateSource): `items` is None
    for a while loop."""

    items: tuple[Any, ...] | None
    index: int
    shadowed: Mapping[str, Any]
    results: list[Any] = field(default_factory=list)

    def frozen(self) -> FrameState:
        if self.items is None:
            return WhileState(self.index, tuple(self.results), self.shadowed)
        return ForeachState(self.items, self.index, tuple(self.results), self.shadowed)

    def iteration(self) -> int | None:
        return self.index


def _shadow(state: InstanceState, names: frozenset[str]) -> dict[str, Any]:
    """Loop variables exist only inside the loop; a variable of the same name set
    before it (a param, say) is shadowed, not lost: the frame keeps it."""
    return {name: state.variables[name] for name in names if name in state.variables}


def _unshadow(state: InstanceState, names: frozenset[str], run: LoopRun) -> None:
    for name in names:
        state.variables.pop(name, None)
    state.variables.update(run.shadowed)


async def _items(step: ForeachStep, state: InstanceState) -> tuple[Any, ...]:
    items = await evaluate(step.items, state.context(step))
    if isinstance(items, dict):
        return tuple([key, value] for key, value in items.items())
    if isinstance(items, list | str | range | tuple):
        return tuple(items)
    raise StepFailed(f"items gave a {type(items).__name__}, not a list",
                     step_id=step.id, step_path=step.path)


async def run_foreach_step(runner: Runner, step: ForeachStep, state: InstanceState,
                           resume: list[Frame] | None = None) -> Any:
    if resume:
        frame = state_of(resume, ForeachState, step)
        run = LoopRun(frame.items, frame.index, frame.shadowed, list(frame.results))
    else:
        run = LoopRun(await _items(step, state), 0, _shadow(state, step.loop_vars()))
    items = run.items
    assert items is not None
    for index in range(run.index, len(items)):
        run.index = index
        state.variables[step.item_var] = items[index]
        if step.index_var:
            state.variables[step.index_var] = index
        value = await runner.block_value(step.body, "body", state, resume, run)
        resume = None
        run.results.append(value)
    _unshadow(state, step.loop_vars(), run)
    return list(run.results)


async def run_while_step(runner: Runner, step: WhileStep, state: InstanceState,
                         resume: list[Frame] | None = None) -> Any:
    """The condition is checked before each iteration (with `index_as` already set to
    the iteration's number); when it still holds after `max_iterations`, the step
    fails rather than loop on."""
    if resume:
        frame = state_of(resume, WhileState, step)
        run = LoopRun(None, frame.index, frame.shadowed, list(frame.results))
    else:
        run = LoopRun(None, 0, _shadow(state, step.loop_vars()))
    while True:
        if resume is None:
            if step.index_var:
                state.variables[step.index_var] = run.index
            if not await evaluate(step.condition, state.context(step)):
                break
            if run.index >= step.max_iterations:
                raise StepFailed(
                    f"the condition {step.condition.source!r} still holds after "
                    f"max_iterations = {step.max_iterations}",
                    step_id=step.id, step_path=step.path, kind="max_iterations")
        value = await runner.block_value(step.body, "body", state, resume, run)
        resume = None
        run.results.append(value)
        run.index += 1
    _unshadow(state, step.loop_vars(), run)
    return list(run.results)
