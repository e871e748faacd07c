"""What the web view's browser and security tests share: `procctl ui` started as a real
process (its printed URL parsed), a home with paused `samples/approval.toml` instances,
a page that records what it does, screenshots, and the skip-or-fail rule: without
Playwright, Chromium or the `ui` extra the tests are skipped with the reason, and under
CI=true they fail instead (`.ci/run` installs Chromium)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest
from helpers import PROCCTL, REPO, SAMPLES, Procctl, run_paused, unique_key

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run",
               "--disable-background-networking"]
APPROVAL = SAMPLES / "approval.toml"
#: where the screenshots are copied for a person to look at (when the folder exists, or
#: PROCCTL_UI_SHOTS names one); they are always saved in the test's own tmp dir too
SHOTS = Path(os.environ.get("PROCCTL_UI_SHOTS", "/work/shots"))
URL = re.compile(r"http://127\.0\.0\.1:(\d+)/\?token=([A-Za-z0-9_\-]+)")
#: every response of the server carries these (i14 contract)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
       "base-uri 'none'; form-action 'self'")


def unavailable(reason: str) -> NoReturn:
    """Fail under CI=true (the browser must be there), skip with the reason otherwise."""
    if os.environ.get("CI", "").strip().lower() in ("true", "1", "yes"):
        pytest.fail(f"browser tests cannot run under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)


def require_ui() -> None:
    """The `ui` extra and the web package are there, or the test is skipped (fails in CI)."""
    for module in ("starlette", "uvicorn", "httpx"):
        if importlib.util.find_spec(module) is None:
            unavailable(f"{module} is not installed: pip install -e '.[test]'")
    if importlib.util.find_spec("procctl.cli.web.app") is None:
        unavailable("procctl.cli.web.app does not exist (the web view is not built)")


@dataclass
class UiServer:
    """One running `procctl ui` process and what it printed."""

    proc: subprocess.Popen[bytes]
    port: int
    token: str
    out: Path
    err: Path

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The URL as printed: with the token."""
        return f"{self.origin}/?token={self.token}"

    def at(self, path: str) -> str:
        """`path` on this server, with the token (for a first visit to a page)."""
        joiner = "&" if "?" in path else "?"
        return f"{self.origin}{path}{joiner}token={self.token}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_ui(procctl: Procctl, folder: Path, *args: str, timeout: float = 30) -> UiServer:
    """Start `procctl ui` for the home of `procctl`; return once its URL is printed and
    its port accepts connections."""
    folder.mkdir(parents=True, exist_ok=True)
    out, err = folder / "ui.out", folder / "ui.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen([PROCCTL, "ui", *args], stdout=stdout, stderr=stderr,
                                stdin=subprocess.DEVNULL, cwd=REPO,
                                env={**procctl.env, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + timeout
    server: UiServer | None = None
    while time.monotonic() < deadline:
        if server is None and (found := URL.search(out.read_text(errors="replace"))):
            server = UiServer(proc, int(found.group(1)), found.group(2), out, err)
        if server is not None and _accepts(server.port):
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    proc.kill()
    proc.wait(timeout=10)
    raise AssertionError(f"procctl ui printed no URL it serves within {timeout}s "
                         f"(exit {proc.returncode})\n--stdout--\n{out.read_text()}"
                         f"--stderr--\n{err.read_text()}")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass
class UiHome:
    """A home with its agent, a `procctl ui` on it, and helpers to make instances."""

    procctl: Procctl
    ui: UiServer
    folder: Path

    def approval(self, order: str | None = None, amount: int = 1200) -> dict[str, Any]:
        """A new paused approval instance: its `run --json` summary, with `id` (the
        instance ID) and `order` (unique unless given)."""
        order = order or f"A-{unique_key()}"
        summary = run_paused(self.procctl, APPROVAL, "-p", f"order={order}",
                             "-p", f"amount={amount}")
        summary["order"] = order
        summary["id"] = summary["instance_id"]
        return summary

    def paused(self, definition: Path, *params: str) -> dict[str, Any]:
        """A new instance of `definition` that must pause; `params` as NAME=VALUE."""
        args: list[str] = []
        for param in params:
            args += ["-p", param]
        summary = run_paused(self.procctl, definition, *args)
        summary["id"] = summary["instance_id"]
        return summary


@dataclass
class Watched:
    """A page with what it did recorded: dialogs it opened, requests it made, console
    errors and uncaught exceptions, failed responses."""

    page: Any
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    #: console errors and uncaught exceptions (a CSP refusal is a console error)
    errors: list[str] = field(default_factory=list)
    #: responses with a status of 400 or more, as "STATUS URL"
    failed: list[str] = field(default_factory=list)
    #: what the next confirm() gets: accept (True) or dismiss (False)
    accept_dialogs: bool = True

    def problems(self) -> list[str]:
        """Errors and failed responses, but the favicon Chromium asks for by itself
        (its 404 is a console error without the URL: failed responses name theirs)."""
        failed = [line for line in self.failed if not line.endswith("/favicon.ico")]
        errors = [line for line in self.errors if not line.startswith(
            "Failed to load resource: the server responded with a status of")]
        return errors + failed


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """Save a full-page screenshot as `ui-NAME.png` in the test's tmp dir, and copy it
    to SHOTS when that folder exists."""
    path = tmp_path / f"ui-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if SHOTS.is_dir():
        with contextlib.suppress(OSError):  # a copy for people, not what is tested
            shutil.copyfile(path, SHOTS / path.name)
    return path
