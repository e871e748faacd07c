"""Test helpers: run the real `procctl` against a home, poll with a timeout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procctl.store import Store

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
PROCCTL = str(Path(sys.executable).parent / "procctl")
PYCACHE = str(Path(tempfile.gettempdir()) / f"procctl-tests-pycache-{os.getuid()}")


@dataclass
class Result:
    """What one `procctl` command did."""

    args: list[str]
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def __str__(self) -> str:
        return (f"procctl {' '.join(self.args)} -> {self.code}\n"
                f"--stdout--\n{self.out}\n--stderr--\n{self.err}")


class Procctl:
    """Runs the installed `procctl` command against one home."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {**os.environ, "PROCCTL_HOME": str(home), "NO_COLOR": "1",
                    "COLUMNS": "200", "TERM": "dumb", "PYTHONPYCACHEPREFIX": PYCACHE}
        # Each command is a new interpreter: let it reuse compiled bytecode (kept out of
        # the work tree) instead of compiling procctl again every time.
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)

    def __call__(self, *args: str | Path, timeout: float = 60, cwd: Path | None = None,
                 env: dict[str, str] | None = None) -> Result:
        argv = [str(a) for a in args]
        proc = subprocess.run(
            [PROCCTL, *argv], capture_output=True, text=True, timeout=timeout,
            env={**self.env, **(env or {})}, cwd=cwd or REPO, stdin=subprocess.DEVNULL,
        )
        return Result(argv, proc.returncode, proc.stdout, proc.stderr)

    def ok(self, *args: str | Path, **kwargs: Any) -> Result:
        """Run and insist on exit code 0."""
        result = self(*args, **kwargs)
        assert result.code == 0, str(result)
        return result

    def many(self, *commands: Sequence[str | Path], **kwargs: Any) -> list[Result]:
        """Run independent commands at the same time (each one is a new process that
        spends most of its time starting Python); results in the order given."""
        with ThreadPoolExecutor(max_workers=len(commands) or 1) as pool:
            return list(pool.map(lambda argv: self(*argv, **kwargs), commands))

    def agent_pid(self) -> int | None:
        try:
            return int((self.home / "agent.lock").read_text().split()[0])
        except (FileNotFoundError, ValueError, IndexError):
            return None

    def stop_agent(self) -> None:
        """Stop the home's agent, if one runs; kill it if it does not stop."""
        if (self.home / "agent.sock").exists():
            self("agent", "stop", timeout=60)
        pid = self.agent_pid()
        if pid is not None and _alive(pid):
            os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); look at its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0]
    except OSError:
        return False
    return state != "Z"


def wait_for(predicate: Callable[[], Any], timeout: float = 20, interval: float = 0.05,
             message: str = "condition") -> Any:
    """Poll until `predicate()` is truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


def unique_key() -> str:
    """A short random key, to keep correlation IDs and file names apart between tests."""
    return uuid.uuid4().hex[:10]


def show_json(procctl: Procctl, instance_id: str) -> dict[str, Any]:
    shown: dict[str, Any] = procctl.ok("show", instance_id, "--json").json()
    return shown


def run_paused(procctl: Procctl, *args: str | Path) -> dict[str, Any]:
    """`run --wait --json` that must end paused; its summary."""
    summary: dict[str, Any] = procctl.ok("run", *args, "--wait", "--json").json()
    assert summary["status"] == "paused", summary
    return summary


def instance_state(procctl: Procctl, instance_id: str) -> tuple[str, str | None, int | None]:
    """Status, checkpoint step and its iteration, read from the store as `show` reads
    it, but in this process: cheap enough to poll while the agent works."""
    store = Store(procctl.home / "procctl.db", must_exist=True)
    try:
        record = store.get_instance(instance_id)
        checkpoint = store.find_checkpoint(record.id)
    finally:
        store.close()
    if checkpoint is None:
        return record.status, None, None
    return record.status, checkpoint.step_id, checkpoint.iteration


def wait_settled(procctl: Procctl, instance_id: str, status: str = "completed",
                 timeout: float = 20) -> dict[str, Any]:
    """Poll until the instance has `status`; then its `show --json`."""
    wait_for(lambda: instance_state(procctl, instance_id)[0] == status, timeout=timeout,
             message=f"instance {instance_id} to be {status}")
    return show_json(procctl, instance_id)
