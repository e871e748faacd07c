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
    Refused,
    RemoteDefinitionError,
    StoreFailed,
    UsageError,
)
from procctl.agent.homefiles import open_private
from procctl.agent.paths import HomePaths

START_TIMEOUT = 20.0

_ERROR_KINDS: dict[str, type[AgentError]] = {
    "usage": UsageError,
    "not_found": InstanceNotFound,
    "definition": RemoteDefinitionError,
    "refused": Refused,
    "store": StoreFailed,
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

    def request(self, op: str, *, timeout: float | None = 30, **args: Any) -> dict[str, Any]:
        """Send one request and return its result's data."""
        data: dict[str, Any] = {}
        for kind, payload in self.stream(op, timeout=timeout, **args):
            if kind == "result":
                data = payload
        return data

    def stream(
        self, op: str, *, timeout: float | None = None, **args: Any
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Send a request and yield ("event", event) ... ("result", data)."""
        try:
            sock = protocol.connect(self.paths.socket, timeout=timeout)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise AgentUnreachable(
                f"no agent is running for home {self.paths.home}",
                hint="start one with: procctl agent start",
            ) from exc
        except OSError as exc:
            raise AgentUnreachable(f"cannot reach the agent at {self.paths.socket}: {exc}") from exc
        with sock, sock.makefile("rb") as reader:
            sock.sendall(protocol.encode({"op": op, **args}))
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
                message = protocol.decode(line)
                kind = message.get("type")
                if kind == "error":
                    error = message["error"]
                    cls = _ERROR_KINDS.get(error.get("kind"), AgentError)
                    raise cls(error["message"], error.get("hint"))
                if kind == "event":
                    yield "event", message["event"]
                elif kind == "result":
                    yield "result", message["data"]
                    return

    def start_background(self, on_start: Callable[[], None] | None = None) -> bool:
        """Start an agent for this home unless one answers. True when this call started it."""
        if self.is_running():
            return False
        self.paths.ensure()
        if on_start:
            on_start()
        command = [sys.executable, "-m", "procctl.cli", "--home", str(self.paths.home),
                   "agent", "run"]
        fd = open_private(self.paths.stdout_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        with os.fdopen(fd, "ab") as out:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True, close_fds=True,
            )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.is_running():
                return True
            if process.poll() is not None and not self.paths.socket.exists():
                # It exited: perhaps another agent won the lock and is still starting.
                time.sleep(0.1)
                if self.is_running():
                    return False
                raise AgentStartFailed(
                    f"the agent exited at start (status {process.returncode}): "
                    f"{_tail(self.paths.stdout_log)}",
                    hint=f"run it in the foreground to see why: procctl --home "
                         f"{self.paths.home} agent run",
                    agent_exit_code=process.returncode,
                )
            time.sleep(0.05)
        raise AgentUnreachable(
            f"the agent did not answer within {START_TIMEOUT:.0f}s of starting",
            hint=f"see {self.paths.log}",
        )


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
