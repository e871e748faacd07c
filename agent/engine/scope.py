"""The `scope` step: `do`, then `catch` if a step in it failed, then `finally`.

A pause inside any of the three blocks keeps the rest in force: the frame of `catch`
holds the error, the frame of `finally` the outcome to finish with (the value, or the
failure to raise again once `finally` is done). A pause is not an exit: `finally`
does not run when the instance pauses, only when the scope ends.

A cancel (`procctl cancel`) inside `do` or `catch` skips `catch` and runs `finally`,
then goes on out (the enclosing scopes run theirs). A cancel inside `finally` ends it
there: it is not run again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ScopeStep
from procctl.agent.engine.cancel import as_cancelled
from procctl.agent.engine.frames import CatchState, CaughtError, FinallyState
from procctl.agent.engine.resuming import state_of
from procctl.agent.engine.state import InstanceCancelled, InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


def caught(failure: StepFailed) -> CaughtError:
    """A failure as the scope keeps it."""
    return CaughtError(failure.message, failure.step_id, failure.step_path, failure.kind)


def error_value(failure: StepFailed) -> dict[str, Any]:
    """What `catch` sees in its error variable."""
    return caught(failure).as_value()


def _failure(error: CaughtError) -> StepFailed:
    return StepFailed(error.message, step_id=error.step, step_path=error.step_path,
                      kind=error.kind)


async def run_scope_step(runner: Runner, step: ScopeStep, state: InstanceState,
                         resume: list[Frame] | None = None) -> Any:
    """The result is `do`'s value, or `catch`'s when it ran."""
    phase = resume[0].block if resume else "do"
    value: Any = None
    error: CaughtError | None = None
    if phase in ("do", "catch"):
        try:
            value, error = await _do_and_catch(runner, step, state, resume, phase)
        except (asyncio.CancelledError, InstanceCancelled) as stop:
            cancelled = as_cancelled(runner.hooks, stop)
            if cancelled is None:
                raise
            await _finally_when_cancelled(runner, step, state)
            raise cancelled from None
        resume = None
    if step.finally_:
        outcome = state_of(resume, FinallyState, step) if resume else FinallyState(value, error)
        saved = state.last_result
        await runner.block_value(step.finally_, "finally", state, resume, outcome)
        state.last_result = saved
        value, error = outcome.value, outcome.error
    if error is not None:
        raise _failure(error)
    state.last_result = value
    return value


async def _do_and_catch(runner: Runner, step: ScopeStep, state: InstanceState,
                        resume: list[Frame] | None, phase: str,
                        ) -> tuple[Any, CaughtError | None]:
    """`do` (from its start or the resume's position), then `catch` if it failed; or
    `catch` alone when the instance resumes into it. Its value and the error left."""
    value: Any = None
    error: CaughtError | None = None
    if phase == "do":
        try:
            value = await runner.block_value(step.body, "do", state, resume)
        except StepFailed as failure:
            error = caught(failure)
            await runner.emit("scope_caught" if step.catch is not None else "scope_failed",
                              step, {"error": error.as_value()})
        resume = None
        if error is not None and step.catch is not None:
            phase = "catch"
    if phase == "catch":
        assert step.catch is not None
        if resume:
            handling = state_of(resume, CatchState, step)
        else:
            assert error is not None
            handling = CatchState(error, {name: state.variables[name]
                                          for name in (step.error_as,)
                                          if name in state.variables})
            state.variables[step.error_as] = error.as_value()
        try:
            value = await runner.block_value(step.catch, "catch", state, resume, handling)
            error = None
        except StepFailed as failure:
            error = caught(failure)
        finally:
            state.variables.pop(step.error_as, None)
            state.variables.update(handling.shadowed)
    return value, error


async def _finally_when_cancelled(runner: Runner, step: ScopeStep,
                                  state: InstanceState) -> None:
    """The scope's `finally` on the way out of a cancelled instance. A failure in it is
    in the history (step_failed); the instance ends cancelled all the same."""
    if not step.finally_:
        return
    await runner.emit("scope_cancelled", step, {})
    with contextlib.suppress(StepFailed):
        await runner.block_value(step.finally_, "finally", state, None,
                                 FinallyState(None, None))
