"""Reading a step's frame state from a snapshot's position when resuming into it."""

from __future__ import annotations

from typing import TypeVar

from procctl.agent.definition.model import Step
from procctl.agent.engine.frames import FrameState
from procctl.agent.errors import StepFailed
from procctl.agent.snapshot import Frame

S = TypeVar("S", bound=FrameState)


def state_of(resume: list[Frame], kind: type[S], step: Step) -> S:
    """The state `step` keeps in the frame it resumes into (`resume[0]`), which must be
    a `kind`; anything else means the snapshot was not taken by this definition."""
    found = resume[0].state
    if not isinstance(found, kind):
        held = "no state" if found is None else f"a {found.TAG} state"
        raise StepFailed(
            f"the snapshot's frame {resume[0].block!r} at {step.path} ({step.kind}) holds "
            f"{held}, not a {kind.TAG} state; the definition does not match the snapshot",
            step_id=step.id, step_path=step.path, kind="snapshot")
    return found
