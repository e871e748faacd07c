"""What the CLI calls: requests to the agent over its socket, and starting it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from procctl.agent import protocol
from procctl.agent.errors import (
    AgentError,
    AgentStartFailed,
    AgentUnreachable,
    InstanceNotFound,
    ProtocolMismatch,
    Refused,
    RemoteDefinitionError,
    StoreFailed,
    UsageError,
)
from procctl.agent.homefiles import open_private
from procctl.agent.messages import (
    Event,
    Failure,
    Reply,
    Request,
    Result,
    parse_reply,
    parse_request,
    request_message,
)
from procctl.agent.paths import HomePaths

#: a starting agent that shows no progress for this long is reported as not starting
STALL_SECONDS = 30.0
#: how long a starter whose agent exited looks for another agent holding the lock
HOLDER_PATIENCE = 1.0
POLL_SECONDS = 0.05

_ERROR_KINDS: dict[str, type[AgentError]] = {
    "usage": UsageError,
    "not_found": InstanceNotFound,
    "definition": RemoteDefinitionError,
    "refused": Refused,
    "store": StoreFailed,
    "version": ProtocolMismatch,
}


class AgentClient:
    def __init__(self, paths: HomePaths) -> None:
        self.paths = paths

    def is_running(self) -> bool:
        try:
            self.request("status", timeout=5)
        except AgentUnreachable:
            return False
        return True

    def request(self, op: str | Request, *, timeout: float | None = 30,
                **args: Any) -> dict[str, Any]:
        """Send one request and return its result's data."""
        data: dict[str, Any] = {}
        for kind, payload in self.stream(op, timeout=timeout, **args):
            if kind == "result":
                data = payload
        return data

    def stream(
        self, op: str | Request, *, timeout: float | None = None, **args: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Send a request (typed, or its op and fields) and yield ("event", event) ...
        ("result", data); a Failure is raised as the matching AgentError."""
        request = op if not isinstance(op, str) else parse_request({"op": op, **args})
        for reply in self.replies(request, timeout=timeout):
            match reply:
                case Event(event=event):
                    yield "event", event
                case Result(data=data):
                    yield "result", data
                    return
                case Failure(kind=kind, message=message, hint=hint):
                    raise _ERROR_KINDS.get(kind, AgentError)(message, hint)

    def replies(self, request: Request, *, timeout: float | None = None) -> Iterator[Reply]:
        """Send a typed request and yield the agent's typed replies, up to the last."""
        try:
            sock = protocol.connect(self.paths.socket, timeout=timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentUnreachable(
                f"no agent is running for home {self.paths.home}",
                hint="start one with: procctl agent start",
            ) from exc
        except OSError as exc:
            raise AgentUnreachable(f"cannot reach the agent at {self.paths.socket}: {exc}") from exc
        op = request.op
        with sock, sock.makefile("rb") as reader:
            sock.sendall(protocol.encode(request_message(request)))
            while True:
                try:
                    line = reader.readline(protocol.MAX_LINE)
                except TimeoutError as exc:
                    raise AgentUnreachable(f"the agent did not answer {op!r} in time") from exc
                if not line:
                    raise AgentUnreachable(
                        f"the agent closed the connection during {op!r}",
                        hint=f"see its log: {self.paths.log}",
                    )
                try:
                    reply = parse_reply(protocol.decode(line))
                except protocol.VersionMismatch as mismatch:
                    raise ProtocolMismatch(
                        f"the agent for home {self.paths.home} speaks protocol "
                        f"{mismatch.version!r} and this procctl speaks protocol "
                        f"{protocol.PROTOCOL_VERSION}: they are different procctl versions",
                        hint="stop the agent with the procctl that started it (procctl "
                             "agent stop), then start it again with the one installed now",
                    ) from None
                yield reply
                if not isinstance(reply, Event):
                    return

    def status(self, timeout: float = 5) -> dict[str, Any] | None:
        """The agent's status, or None when no agent answers."""
        try:
            return self.request("status", timeout=timeout)
        except AgentUnreachable:
            return None

    def start_background(self, on_start: Callable[[], None] | None = None,
                         ) -> tuple[bool, dict[str, Any]]:
        """Start an agent for this home unless one answers, and wait until it takes
        requests: it answers and has opened its store (it may still be recovering
        instances and applying signal files, or wait for disk space: see the status).
        Returns (whether this call started it, its status)."""
        status = self.status()
        process = None
        # An agent that holds the lock but does not answer yet is being started by
        # another command: wait for it rather than start one more that would lose.
        if status is None and _lock_holder(self.paths.lock, exact=True) is None:
            self.paths.ensure()
            if on_start:
                on_start()
            process = self._spawn()
        status = self._wait_started(process, status)
        return process is not None and status.get("pid") == process.pid, status

    def _spawn(self) -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "procctl.cli", "--home", str(self.paths.home),
                   "agent", "run"]
        fd = open_private(self.paths.stdout_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "ab") as out:
            return subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, close_fds=True,
            )

    def _wait_started(self, process: subprocess.Popen[bytes] | None,
                      status: dict[str, Any] | None) -> dict[str, Any]:
        """Poll until an agent answers past opening its store. No fixed limit: it gives
        up when nothing has changed for STALL_SECONDS (no answer, the same agent still
        opening its store, or the same other agent holding the home's lock).

        A starter that lost the race for the lock (its agent exited at once) waits
        for the agent that holds the lock: the one another starter started."""
        seen: tuple[str, int | None] | None = None
        deadline = time.monotonic() + STALL_SECONDS
        orphaned_at: float | None = None  # no agent of ours runs, none holds the lock
        while True:
            now = time.monotonic()
            if status is not None:
                if not _opening_store(status):
                    return status
                progress = ("still opening its store", status.get("pid"))
            elif process is not None and process.poll() is None:
                progress = ("not answering", process.pid)
            else:
                progress = ("holding the lock, not answering", _lock_holder(self.paths.lock))
                if progress[1] is not None:
                    orphaned_at = None
                elif orphaned_at is None:
                    orphaned_at = now
                elif now - orphaned_at >= HOLDER_PATIENCE:
                    raise self._exited(process)
            if progress != seen:
                seen, deadline = progress, now + STALL_SECONDS
            elif now >= deadline:
                raise AgentUnreachable(
                    f"the agent (pid {progress[1]}) for home {self.paths.home} made no "
                    f"progress in {STALL_SECONDS:.0f}s of starting: {progress[0]}",
                    hint=f"see its log: {self.paths.log}")
            time.sleep(POLL_SECONDS)
            status = self.status()

    def _exited(self, process: subprocess.Popen[bytes] | None) -> AgentUnreachable:
        if process is None:
            return AgentUnreachable(
                f"the agent for home {self.paths.home} stopped while it was starting",
                hint=f"see its log: {self.paths.log}")
        return AgentStartFailed(
            f"the agent exited at start (status {process.returncode}): "
            f"{_tail(self.paths.stdout_log)}",
            hint=f"run it in the foreground to see why: procctl --home "
                 f"{self.paths.home} agent run",
            agent_exit_code=process.returncode,
        )


def _opening_store(status: dict[str, Any]) -> bool:
    startup = status.get("startup") or {}
    return status.get("state") == "starting" and startup.get("phase") == "opening_store"


def _lock_holder(path: Path, *, exact: bool = False) -> int | None:
    """The pid of the agent that holds the home's lock, if one does.

    Linux says exactly (/proc/locks lists each flock with its pid and the file's
    device and inode). Elsewhere the pid the agent wrote into the file is taken if that
    process is alive, which a pid reused since can fool: `exact` then gives None."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    try:
        table = Path("/proc/locks").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None if exact else _pid_in_file(path)
    device = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    for line in table.splitlines():
        # "1: FLOCK  ADVISORY  WRITE 4751 00:2d:1234 0 EOF" (waiters have "->" first)
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == device:
            return int(fields[4]) if fields[4].isdigit() else None
    return None


def _pid_in_file(path: Path) -> int | None:
    """The pid in the lock file, if that process is alive (an agent that took the lock
    writes its pid there first thing)."""
    try:
        text = path.read_text(encoding="ascii", errors="replace").strip()
    except OSError:
        return None
    if not text.isdigit():
        return None
    pid = int(text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _tail(path: Path, limit: int = 300) -> str:
    """Why the agent exited: its last `Error:` line (its hint follows it), else its last
    line of output."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "(no output)"
    lines = text.splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    if errors:
        return errors[-1].removeprefix("Error: ")[-limit:]
    return lines[-1][-limit:] if lines else "(no output)"
