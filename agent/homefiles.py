"""Opening the agent's own files in its home: never through a symbolic link, and only
when they belong to the agent's user and no one else may write them.

A home prepared by someone else could hold `agent.lock` linked to a file of the user
who runs the agent; opening it with O_NOFOLLOW, then checking what was opened
(`fstat`, not the path again), leaves no moment in which a link could be swapped in.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from procctl.agent.errors import UnsafeHome
from procctl.store.files import problem_with

HINT = ("the home and every file in it must belong to the user that runs procctl and be "
        "writable only by that user; remove the file (procctl makes a new one) or use "
        "another --home")


def refuse(path: Path, reason: str) -> UnsafeHome:
    return UnsafeHome(f"{path} {reason}; procctl does not use it", hint=HINT)


def open_private(path: Path, flags: int, mode: int = 0o600) -> int:
    """`os.open` for a file of the home: not through a link, and the file it opened must
    be a regular file of this user that others may not write (UnsafeHome otherwise).
    Returns the descriptor."""
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise refuse(path, "is a symbolic link") from None
        raise
    try:
        reason = problem_with(os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    if reason is not None:
        os.close(fd)
        raise refuse(path, reason)
    return fd


def read_private(path: Path) -> str | None:
    """The text of a file of the home, or None when there is none."""
    try:
        fd = open_private(path, os.O_RDONLY)
    except (FileNotFoundError, NotADirectoryError):
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read().decode("utf-8")
