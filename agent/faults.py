"""Test-only fault points: `PROCCTL_FAULT=point[:n],...` kills the agent with SIGKILL the
n-th time (default: the first) it passes `point`. The fault suite uses them to stop
the agent at exact moments; with the variable unset they cost a dictionary lookup.

Points: before_checkpoint_commit (the snapshot is built, not committed),
before_commit_block (the snapshot is committed, the commit block has not run),
after_checkpoint_commit (the snapshot is committed and the commit block has run; the
instance has not paused or gone on yet), in_recover (as the recover block starts),
after_signal_commit (the signal is applied in the store, its file not moved yet),
before_wake_parent (a child instance has ended in the store; the parent paused at its
call has not been sent the signal that resumes it).

The gaps of a pause and of a resume have their own points (`halt`, in the agent's
order): a checkpoint that pauses is saved (before_checkpoint_commit, before_commit_block),
its commit block runs (after_checkpoint_commit), it pauses and may take a held signal
(after_pause_commit: committed, the held signal's resume not started); a resume is
committed (before_resume_launch: the instance is running in the store, its snapshot not
loaded), the snapshot is loaded (after_snapshot_loaded: instance_resumed sent, the
recover block or the commit value not taken yet), in_recover, the value is taken
(after_resume_value: the next step not started); a recovered checkpoint that never
paused runs its recover block and pauses again (before_repause: recovered, not paused).

`PROCCTL_FAULT_STOP=point[:n],...`: at a `halt` point, stop the agent cleanly instead
(SIGTERM, as `procctl agent stop` or systemd would) while the instance waits there; the
agent's shutdown grace runs out and cancels it, as it does a step that runs too long.

`PROCCTL_FAIL=point[:n],...` makes a point fail instead: `failing(point)` is true the
first n times it is passed (without n: every time). Points: store.<method> (the store
call of that name raises a DatabaseError, as a corrupt page would; e.g.
store.due_resumes, the scheduler's first call of every tick).
"""

from __future__ import annotations

import asyncio
import os
import signal

ENV = "PROCCTL_FAULT"
STOP_ENV = "PROCCTL_FAULT_STOP"
FAIL_ENV = "PROCCTL_FAIL"


def _parse(text: str, default: int = 1) -> dict[str, int]:
    points: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.partition(":")
        points[name] = int(count) if count else default
    return points


_armed = _parse(os.environ.get(ENV, ""))
_stopping = _parse(os.environ.get(STOP_ENV, ""))
_failing = _parse(os.environ.get(FAIL_ENV, ""), default=-1)  # -1: every time


def _counted_down(table: dict[str, int], point: str) -> bool:
    """One more pass at an armed `point`: is this the pass it was armed for?"""
    remaining = table.get(point)
    if remaining is None:
        return False
    table[point] = remaining - 1
    return remaining - 1 == 0


def fault(point: str) -> None:
    """Die here if the environment asks for it (see the module docstring)."""
    if _counted_down(_armed, point):
        os.kill(os.getpid(), signal.SIGKILL)


def failing(point: str) -> bool:
    """Should `point` fail this time? (PROCCTL_FAIL, see the module docstring)"""
    remaining = _failing.get(point)
    if not remaining:
        return False
    if remaining > 0:
        _failing[point] = remaining - 1
    return True


async def halt(point: str) -> None:
    """A fault point inside an instance: die here (PROCCTL_FAULT), or stop the agent
    cleanly and wait here until the shutdown cancels this instance (PROCCTL_FAULT_STOP)."""
    fault(point)
    if _counted_down(_stopping, point):
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.Event().wait()  # until the shutdown cancels the instance
