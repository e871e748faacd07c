"""What the drawings say about a step: the texts the flowchart and the tree share."""

from __future__ import annotations

from procctl.agent.definition.model import (
    Branch,
    CheckpointStep,
    Definition,
    Liveness,
    ScheduledResumeStep,
    SetStep,
)
from procctl.agent.durations import format_duration


def correlation_text(step: CheckpointStep) -> str:
    """The checkpoint's correlation ID as written, or the default it gets."""
    if step.correlation_id is None:
        return f"<instance id>:{step.id}"
    return step.correlation_id.source


def ttl_text(step: CheckpointStep) -> str:
    return "none" if step.ttl is None else format_duration(step.ttl)


def stores_text(liveness: Liveness | None) -> str:
    """What a checkpoint's snapshot keeps: `a, b`, `no variables`, plus the results."""
    if liveness is None:
        return "no variables"
    text = ", ".join(sorted(liveness.variables)) or "no variables"
    if liveness.all_results:
        text += "; all results"
    elif liveness.results:
        text += "; results of " + ", ".join(sorted(liveness.results))
    return text


def checkpoint_facts(definition: Definition, step: CheckpointStep) -> tuple[tuple[str, str], ...]:
    return (("correlation", correlation_text(step)), ("ttl", ttl_text(step)),
            ("stores", stores_text(definition.liveness.get(step.id))))


def branch_label(branch: Branch) -> str:
    if branch.when is None:
        return branch.name
    return f"{branch.name}: {branch.when.source}"


def set_names(step: SetStep) -> str:
    return ", ".join(name for name, _ in step.values)


def resume_when(step: ScheduledResumeStep) -> str:
    if step.after is not None:
        return f"after {format_duration(step.after)}"
    return f"at {step.at.source}" if step.at is not None else ""
