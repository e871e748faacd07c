"""One agent per home: an exclusive, non-blocking flock on `<home>/agent.lock`."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from procctl.agent.errors import AgentUnreachable


class HomeLock:
    """Held for the agent's lifetime; the kernel releases it if the agent dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
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
