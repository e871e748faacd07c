"""One agent per home: an exclusive, non-blocking flock on `<home>/agent.lock`."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from procctl.agent.errors import AgentUnreachable
from procctl.agent.homefiles import open_private


class HomeLock:
    """Held for the agent's lifetime; the kernel releases it if the agent dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise AgentUnreachable(
                f"another agent (pid {holder}) already runs for home {self.path.parent}",
                hint="use that one, or stop it first with: procctl agent stop",
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        os.fsync(fd)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _holder(fd: int, patience: float = 2.0) -> str:
    """The pid of the agent holding the lock. An agent that has just taken it may not
    have written its pid yet (the file is empty, or still names the agent before it):
    wait a moment for a pid that is alive."""
    deadline = time.monotonic() + patience
    while True:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit() and int(text) != os.getpid() and _alive(int(text)):
            return text
        if time.monotonic() >= deadline:
            return text or "unknown"
        time.sleep(0.01)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
