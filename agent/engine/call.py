"""The `call` step: run another definition as a child instance and wait for it.

The child is an instance of its own (its own history, checkpoints and correlation
IDs: it may pause for a week), started from the definition text pinned with the
parent. Its id is recorded against the call's position, so a parent that runs the
call again after a restart finds the child it started instead of starting another.
While the child is paused, so is the parent, at the call (see `_await_child`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.calls import call_correlation_id
from procctl.agent.definition.model import CallStep
from procctl.agent.definition.params import resolve_params
from procctl.agent.engine.checkpoint import save_snapshot
from procctl.agent.engine.evaluation import render
from procctl.agent.engine.state import CheckpointInfo, InstanceState, PauseInstance, ResumeInfo
from procctl.agent.errors import StepFailed, UsageError
from procctl.agent.snapshot import Frame
from procctl.store.records import Status

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_call_step(runner: Runner, step: CallStep, state: InstanceState,
                        resume: list[Frame] | None = None) -> Any:
    """The result is the child's result; a failed or cancelled child fails the step."""
    supplied = await render(step.params, state.context(step))
    try:
        params = resolve_params(step.child.params, from_file=supplied,
                                process_name=step.child.name)
    except UsageError as exc:
        raise StepFailed(f"call {step.file}: {exc.message}", step_id=step.id,
                         step_path=step.path, kind="call_params") from None
    child_id = await runner.hooks.start_child(step.child, params, state.call_key(step))
    await runner.emit("child_started", step, {"instance_id": child_id,
                                              "process": step.child.name})
    return await _await_child(runner, step, state, child_id)


async def resume_call(runner: Runner, step: CallStep, state: InstanceState,
                      info: ResumeInfo) -> Any:
    """Go on at a call the instance paused at while its child was paused: take the
    child's outcome, or pause again if it is still not done (a resume by hand)."""
    child_id = str(info.snapshot.extra["call"]["child_id"])
    state.checkpoint = CheckpointInfo(step.id, info.snapshot.correlation_id, info.iteration)
    await runner.emit("instance_resumed", step, {
        "resumed_by": info.resumed_by, "iteration": info.iteration,
        "correlation_id": info.snapshot.correlation_id, "recover": False,
        "child": child_id})
    return await _await_child(runner, step, state, child_id)


async def _await_child(runner: Runner, step: CallStep, state: InstanceState,
                       child_id: str) -> Any:
    """The child's result. When the child pauses, the parent pauses too (where it can:
    not in a parallel branch or a checkpoint's block): its snapshot is taken at the
    call, and the child's end resumes it, so a wait of a week holds no memory and
    survives restarts of the agent."""
    outcome = await runner.hooks.wait_child(child_id, until_paused=state.can_pause())
    if outcome["status"] == Status.PAUSED:
        correlation_id = call_correlation_id(child_id)
        await save_snapshot(runner, step, state, correlation_id,
                            extra={"call": {"child_id": child_id}})
        await runner.hooks.pause(step, {"correlation_id": correlation_id,
                                        "waiting_for": child_id},
                                 commit_value=None, resume_at=None)
        raise PauseInstance()
    if outcome["status"] == Status.COMPLETED:
        return outcome["result"]
    error = outcome.get("error") or {}
    if outcome["status"] == Status.CANCELLED:
        # As a workflow engine surfaces a cancelled child: a failure of the call, which
        # the parent's `catch` may handle (error kind child_cancelled).
        raise StepFailed(
            f"child instance {child_id} ({step.child.name}) was "
            f"{error.get('message', 'cancelled')}",
            step_id=step.id, step_path=step.path, kind="child_cancelled")
    where = f" at step {error['step_id']!r}" if error.get("step_id") else ""
    raise StepFailed(
        f"child instance {child_id} ({step.child.name}) {outcome['status']}{where}: "
        f"{error.get('message', 'no message')}",
        step_id=step.id, step_path=step.path, kind="child_failed")
