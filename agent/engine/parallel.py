"""The `parallel` step: its branches run at once (at most `max_concurrency` together)
and the step ends when all have.

Each branch works on its own copy of the variables; what it sets stays in it. The
step's result maps each branch's name to its value (what a `return` in it gave, else
the `result` its last step left), and the results of the steps inside the branches
are merged into `results`. The first branch to fail cancels the others and fails
the step. Validation keeps checkpoints out of branches: a branch cannot pause.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import Branch, ParallelStep
from procctl.agent.engine.state import InstanceState
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_parallel_step(runner: Runner, step: ParallelStep, state: InstanceState,
                            resume: list[Frame] | None = None) -> Any:
    gate = asyncio.Semaphore(step.max_concurrency or len(step.branches))

    async def run_branch(branch: Branch) -> tuple[InstanceState, Any]:
        async with gate:
            fork = state.fork()
            value = await runner.block_value(branch.steps, branch.block, fork)
            return fork, value

    tasks = [asyncio.create_task(run_branch(branch)) for branch in step.branches]
    try:
        done = await asyncio.gather(*tasks)
    except BaseException:
        if runner.hooks.cancellation is None:
            for pending in tasks:
                pending.cancel()
        # else a person cancelled the instance: each branch has its cancel already and
        # runs the `finally` blocks it is in; a second cancel would cut them short
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    values: dict[str, Any] = {}
    for branch, (fork, value) in zip(step.branches, done, strict=True):
        values[branch.name] = value
        state.results.update(fork.results)
    return values
