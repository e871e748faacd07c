"""The `call` step: run another definition as a child instance and wait for it.

The child is an instance of its own (its own history, checkpoints and correlation
IDs: it may pause for a week), started from the definition text pinned with the
parent. Its id is recorded against the call's position, so a parent that runs the
call again after a restart finds the child it started instead of starting another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import CallStep
from procctl.agent.definition.params import resolve_params
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed, UsageError
from procctl.agent.expressions import render_value
from procctl.agent.snapshot import Frame

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_call_step(runner: Runner, step: CallStep, state: InstanceState,
                        resume: list[Frame] | None = None) -> Any:
    """The result is the child's result; a failed child fails the step."""
    supplied = render_value(step.params, state.context(step))
    try:
        params = resolve_params(step.child.params, from_file=supplied,
                                process_name=step.child.name)
    except UsageError as exc:
        raise StepFailed(f"call {step.file}: {exc.message}", step_id=step.id,
                         step_path=step.path, kind="call_params") from None
    child_id = await runner.hooks.start_child(step.child, params, state.call_key(step))
    await runner.emit("child_started", step, {"instance_id": child_id,
                                              "process": step.child.name})
    outcome = await runner.hooks.wait_child(child_id)
    if outcome["status"] == "completed":
        return outcome["result"]
    error = outcome.get("error") or {}
    where = f" at step {error['step_id']!r}" if error.get("step_id") else ""
    raise StepFailed(
        f"child instance {child_id} ({step.child.name}) {outcome['status']}{where}: "
        f"{error.get('message', 'no message')}",
        step_id=step.id, step_path=step.path, kind="child_failed")
