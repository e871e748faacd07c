"""The `scope` step: `do`, then `catch` if a step in it failed, then `finally`.

A pause inside any of the three blocks keeps the rest in force: the frame of `catch`
holds the error, the frame of `finally` the outcome to finish with (the value, or the
failure to raise again once `finally` is done). A pause is not an exit: `finally`
does not run when the instance pauses, only when the scope ends.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import ScopeStep
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


def error_value(failure: StepFailed) -> dict[str, Any]:
    """What `catch` sees in its error variable."""
    return {"message": failure.message, "step": failure.step_id,
            "step_path": failure.step_path, "kind": failure.kind}


def _failure(error: dict[str, Any]) -> StepFailed:
    return StepFailed(str(error["message"]), step_id=error.get("step"),
                      step_path=error.get("step_path"), kind=str(error.get("kind")))


async def run_scope_step(runner: Runner, step: ScopeStep, state: InstanceState,
                         resume: list[Frame] | None = None) -> Any:
    """The result is `do`'s value, or `catch`'s when it ran."""
    phase = resume[0].block if resume else "do"
    frame: dict[str, Any] = {}
    if resume and resume[0].loop is not None:
        frame = copy.deepcopy(resume[0].loop)
    value: Any = frame.get("value")
    error: dict[str, Any] | None = frame.get("error")
    if phase == "do":
        try:
            value = await runner.block_value(step.body, "do", state, resume)
        except StepFailed as failure:
            error = error_value(failure)
            await runner.emit("scope_caught" if step.catch is not None else "scope_failed",
                              step, {"error": error})
        resume = None
        if error is not None and step.catch is not None:
            phase = "catch"
            frame = {"error": error, "shadowed": {
                name: state.variables[name] for name in (step.error_as,)
                if name in state.variables}}
            state.variables[step.error_as] = error
    if phase == "catch":
        assert step.catch is not None
        try:
            value = await runner.block_value(step.catch, "catch", state, resume, frame)
            error = None
        except StepFailed as failure:
            error = error_value(failure)
        finally:
            state.variables.pop(step.error_as, None)
            state.variables.update(frame.get("shadowed", {}))
        resume = None
    if step.finally_:
        outcome = {"value": value, "error": error}
        if phase == "finally":
            outcome = frame
        saved = state.last_result
        await runner.block_value(step.finally_, "finally", state, resume, outcome)
        state.last_result = saved
        value, error = outcome.get("value"), outcome.get("error")
    if error is not None:
        raise _failure(error)
    state.last_result = value
    return value
