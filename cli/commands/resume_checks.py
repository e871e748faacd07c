"""What `procctl resume` checks before it writes a signal file.

The signal_id (it becomes part of a file name), the size of the file against
`max_signal_bytes`, and that an instance waits at the correlation ID: read from the
store (read only, as `procctl list` does), so the check works with the agent running
or stopped. A mistyped correlation ID is refused with a "did you mean" instead of being
held for whichever instance pauses there later; `--pending` asks for the holding. The
"did you mean" reads a bounded number of IDs near the given one in the correlation ID
index (its neighbours, and IDs sharing ever shorter prefixes), never every paused one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import get_close_matches

from procctl.agent.decisions import ResumeTarget, decide_resume_target
from procctl.agent.errors import AgentError, UsageError
from procctl.agent.paths import HomePaths
from procctl.agent.signals import signal_id_problem
from procctl.cli.options import has_store, read_store
from procctl.store import StoreContract
from procctl.store.clock import utc_now


class SignalRefused(AgentError):
    """`procctl resume` will not send this signal; the message says why."""

    exit_code = 7


@dataclass(frozen=True)
class Refusal:
    """Why no instance would take the signal now."""

    message: str
    hint: str
    instance_id: str | None = None
    did_you_mean: list[str] = field(default_factory=list)


def check_signal_id(signal_id: str) -> None:
    problem = signal_id_problem(signal_id)
    if problem is not None:
        raise UsageError(f"--signal-id: {problem}",
                         hint="leave --signal-id out for a new random one")


def check_size(size: int, limit: int) -> None:
    """The signal file would be `size` bytes; the agent refuses files over `limit`."""
    if size > limit:
        raise UsageError(
            f"the signal would be {size} bytes, over max_signal_bytes ({limit}): the agent "
            "would reject it",
            hint="send a smaller payload (a path to a file rather than its content), or "
                 "raise the limit: procctl config set max_signal_bytes N, then restart "
                 "the agent")


def _read(store: StoreContract, correlation_id: str) -> tuple[ResumeTarget, list[str] | None]:
    """What the signal would find, and when it would find nothing, the correlation IDs
    it may have been meant for: those near it in the index (a bounded read, whatever
    the number of paused instances), or None when no instance is paused at all."""
    target = decide_resume_target(store.resume_target(correlation_id), utc_now())
    if target.resumable:
        return target, []
    if store.count_paused_upto(1) == 0:
        return target, None
    return target, store.paused_correlation_ids_near(correlation_id)


def refusal(home: HomePaths, correlation_id: str) -> Refusal | None:
    """None when a paused instance (or a failed one that kept its checkpoint) waits at
    `correlation_id`; else why not, with the paused IDs it may have been meant for."""
    target_id: str | None = None
    reason: str | None = None
    paused: list[str] | None = None
    if has_store(home):
        target, paused = read_store(home, lambda store: _read(store, correlation_id))
        if target.resumable:
            return None
        target_id, reason = target.instance_id, target.reason
    hint = ("procctl list-paused lists the paused instances and their correlation IDs; "
            "--pending holds the signal until an instance pauses at this ID")
    message = f"no instance is paused at correlation ID {correlation_id!r}"
    if reason is not None:
        return Refusal(f"{message}: {reason}", hint, target_id)
    close = get_close_matches(correlation_id, paused or [], n=3, cutoff=0.6)
    if close:
        message += "; did you mean " + " or ".join(repr(c) for c in close) + "?"
    elif paused is None:
        message += " (no instance is paused at all)"
    return Refusal(message, hint, None, close)
