"""The `signal` step: resume another paused instance by correlation ID."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.definition.model import SignalStep
from procctl.agent.engine.evaluation import evaluate, render
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import StepFailed
from procctl.agent.signals import signal_id_problem
from procctl.agent.snapshot import Frame
from procctl.store.records import SignalStatus

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


async def run_signal_step(runner: Runner, step: SignalStep, state: InstanceState,
                          resume: list[Frame] | None = None) -> Any:
    """The result says what became of the signal; a rejected signal fails the step."""
    context = state.context(step)
    correlation_id = str(await evaluate(step.correlation_id, context))
    payload = await render(step.payload, context)
    signal_id = (None if step.signal_id is None
                 else str(await evaluate(step.signal_id, context)))
    problem = None if signal_id is None else signal_id_problem(signal_id)
    if problem is not None:
        raise StepFailed(problem, step_id=step.id, step_path=step.path, kind="signal_rejected")
    outcome = await runner.hooks.send_signal(correlation_id=correlation_id, payload=payload,
                                             signal_id=signal_id)
    if outcome["outcome"] == SignalStatus.REJECTED:
        raise StepFailed(f"signal to {correlation_id!r} rejected: {outcome['reason']}",
                         step_id=step.id, step_path=step.path, kind="signal_rejected")
    return outcome
