"""Sending a resume signal the way `procctl resume` does: the signal file goes into the
home's signals directory, written only once the agent listens for its signal_id (the
agent's `await_signal`), so that it cannot be taken before the agent follows it.

`procctl resume` (cli/commands/resume.py) and the web view's resume (cli/web/actions.py)
both send through here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from procctl.agent.client import AgentClient
from procctl.agent.errors import AgentUnreachable
from procctl.agent.paths import HomePaths
from procctl.cli import following


def signal_path(home: HomePaths, settings: dict[str, Any], signal_id: str) -> Path:
    """Where the signal file of `signal_id` goes (its directory made if missing)."""
    home.ensure()
    directory = home.signals_dir(str(settings["signals_dir"]))
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory / f"resume-{signal_id}.json"


def await_signal(client: AgentClient, signal_id: str, file: str, written_at: str,
                 timeout: float, *, write: Callable[[], None], follow: bool = True,
                 quiet: bool = False,
                 on_outcome: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Ask the agent for what becomes of signal `signal_id`, `write` its file once the
    agent listens, and return the agent's result: {"signal": ...} and, with `follow`,
    the instance it resumed as it settled ({"instance": ...}; its steps are printed
    unless `quiet`, after `on_outcome(signal)` has been called).

    The file is written in any case: when the agent goes away, it waits in the
    directory for the next one. AgentUnreachable when the agent did not take the
    signal within `timeout` seconds."""
    outcome: dict[str, Any] = {}
    stream = client.stream("await_signal", signal_id=signal_id, follow=follow, announce=True,
                           file=file, since=written_at, wait_seconds=timeout, timeout=None)
    try:
        outcome = _read(stream, write, outcome, quiet=quiet, on_outcome=on_outcome)
    finally:
        if not outcome.pop("written", False):  # the agent went away: the file waits
            write()                              # for the next one
    if outcome.get("signal") is None:
        raise AgentUnreachable(
            f"the agent did not take signal {signal_id} within {timeout:.0f}s",
            hint="procctl signals shows what is waiting; the file stays in the directory")
    return outcome


def _read(stream: Iterator[tuple[str, dict[str, Any]]], write: Callable[[], None],
          outcome: dict[str, Any], *, quiet: bool,
          on_outcome: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
    """`await_signal`'s reading of the agent's messages (cli/following.py prints the
    steps); `outcome` records as it goes whether the file was written and the header
    printed (`header_printed`)."""

    def written_first() -> bool:
        """After the agent's announcement (or at its first message, if it makes none),
        the signal file is written; True when this message was the announcement."""
        if outcome.get("written"):
            return False
        write()
        outcome["written"] = True
        return True

    def on_event(payload: dict[str, Any]) -> bool:
        if written_first() and payload.get("kind") == "awaiting_signal":
            return True
        if payload.get("kind") == "signal_outcome":
            if on_outcome is not None:
                on_outcome(payload["data"])
            outcome["header_printed"] = True
            return True
        return False

    result = following.follow(stream, quiet=quiet, on_event=on_event)
    written_first()
    if not result:
        return outcome
    return {**result, "written": True, "header_printed": outcome.get("header_printed", False)}
