"""Decisions: `if`, `switch` (the first case that holds) and `inclusive` (every branch
that holds, in order). On a resume the frame names the branch that was running, and
no condition is evaluated again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import Branch, IfStep, InclusiveStep, SwitchStep
from procctl.agent.engine.evaluation import evaluate
from procctl.agent.engine.frames import InclusiveState
from procctl.agent.engine.resuming import state_of
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_if_step(runner: Runner, step: IfStep, state: InstanceState,
                      resume: list[Frame] | None = None) -> Any:
    """The step's result is the `result` left by the branch that ran (None if none ran)."""
    if resume:
        name = resume[0].block
    else:
        name = "then" if await evaluate(step.condition, state.context(step)) else "else"
        state.last_result = None
    block = step.then if name == "then" else step.else_
    await runner.run_block(block, name, state, resume)
    return state.last_result


async def run_switch_step(runner: Runner, step: SwitchStep, state: InstanceState,
                          resume: list[Frame] | None = None) -> Any:
    """The result is the `result` the case that ran left (None for an empty default)."""
    if resume:
        chosen = step.branch(resume[0].block)
    else:
        context = state.context(step)
        chosen = await _first_that_holds(step.branches, context)
        await runner.emit("branch_taken", step, {"branch": chosen.name})
        state.last_result = None
    await runner.run_block(chosen.steps, chosen.block, state, resume)
    return state.last_result


async def _first_that_holds(branches: tuple[Branch, ...], context: dict[str, Any]) -> Branch:
    """The first case whose `when` holds, else the default (the last branch, which has
    no `when`)."""
    for branch in branches:
        if branch.when is None or await evaluate(branch.when, context):
            return branch
    return branches[-1]


async def run_inclusive_step(runner: Runner, step: InclusiveStep, state: InstanceState,
                             resume: list[Frame] | None = None) -> Any:
    """Conditions are evaluated once, at the start. The result maps the name of each
    branch that ran to the `result` it left; the frame (InclusiveState) keeps both
    across a pause, a new state after each branch."""
    if resume:
        taken = state_of(resume, InclusiveState, step)
        if resume[0].block not in taken.selected:
            raise StepFailed(
                f"the snapshot's frame {resume[0].block!r} at {step.path} is not one of "
                "the selected branches; the definition does not match the snapshot",
                step_id=step.id, step_path=step.path, kind="snapshot")
        start = taken.selected.index(resume[0].block)
    else:
        context = state.context(step)
        taken = InclusiveState(tuple([branch.block for branch in step.branches
                                      if branch.when is not None
                                      and await evaluate(branch.when, context)]), {})
        await runner.emit("branch_taken", step, {"branches": [
            step.branch(block).name for block in taken.selected]})
        start = 0
    for block in taken.selected[start:]:
        branch = step.branch(block)
        if resume is None:
            state.last_result = None
        await runner.run_block(branch.steps, block, state, resume, taken)
        resume = None
        taken = InclusiveState(taken.selected,
                               {**taken.results, branch.name: state.last_result})
    return dict(taken.results)
