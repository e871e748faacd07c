"""`procctl cancel ID [--reason TEXT]`: end a running or paused instance for good.

With an agent running for the home, the agent does it (a running instance stops at once,
the `finally` blocks of its scopes run). Without one, the command writes the store
itself (agent/cancelling.py `cancel_without_agent`), holding the home's lock so that no
agent starts meanwhile; nothing is started in the background for a cancel.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Annotated, Any

import typer

from procctl.agent.cancelling import Cancelled, cancel_without_agent, check_reason
from procctl.agent.client import AgentClient
from procctl.agent.engine.state import Cancellation
from procctl.agent.errors import AgentUnreachable
from procctl.agent.lock import HomeLock
from procctl.agent.paths import HomePaths
from procctl.cli import render
from procctl.cli.options import global_options, home_store_url, open_home_store
from procctl.store.errors import NotFound


def requester() -> str:
    """Who asks: `cli:USER@HOST`, recorded with the cancellation."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        user = f"uid{os.getuid()}"
    return f"cli:{user}@{socket.gethostname()}"


def cancel_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    reason: Annotated[str | None, typer.Option(
        "--reason", metavar="TEXT",
        help="Why: recorded with the cancellation, and given to the signals refused "
             "for it later.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Cancel a running or paused instance: it stops at once (the finally blocks of its
    scopes run), its checkpoint is discarded, and it ends cancelled.

    A paused instance is cancelled in the store even when no agent runs. Its children
    that have not ended are cancelled with it; a parent waiting at its call fails
    there. A completed, failed or cancelled instance is refused (exit code 8).
    """
    options = global_options(ctx)
    cancellation = Cancellation(requester(), check_reason(reason))
    client = AgentClient(options.home)
    if client.status() is not None:
        data = _through_agent(client, instance_id, cancellation)
    else:
        data = _without_agent(options.home, client, instance_id, cancellation)
    if as_json:
        render.print_json(data)
    else:
        print_cancelled(data)


def _through_agent(client: AgentClient, instance_id: str,
                   cancellation: Cancellation) -> dict[str, Any]:
    return client.request("cancel", instance_id=instance_id, by=cancellation.by,
                          reason=cancellation.reason, timeout=None)


def _without_agent(home: HomePaths, client: AgentClient, instance_id: str,
                   cancellation: Cancellation) -> dict[str, Any]:
    """The store's transition, written here. On a home's SQLite file the home's lock is
    held meanwhile (no agent can start and run the instance); an agent that holds it
    already is starting: it is waited for and asked instead."""
    lock: HomeLock | None = None
    if home_store_url(home) is None:
        if not home.db.exists():
            raise NotFound(f"no store at {home.db}",
                           hint="run a process first (procctl run FILE), or pass the "
                                "right --home")
        lock = HomeLock(home.lock)
        try:
            lock.acquire()
        except AgentUnreachable:  # an agent is starting: it does the cancel
            client.start_background()
            return _through_agent(client, instance_id, cancellation)
    try:
        store = open_home_store(home, must_exist=True)
        try:
            done: Cancelled = cancel_without_agent(store, instance_id, cancellation)
        finally:
            store.close()
    finally:
        if lock is not None:
            lock.release()
    return done.to_json()


def print_cancelled(data: dict[str, Any]) -> None:
    error = data.get("error") or {}
    instance = render.safe_text(data["instance_id"])
    render.console.print(f"Cancelled instance [bold]{instance}[/] "
                         f"({render.safe_text(data['process'])}) by "
                         f"{render.safe_text(error.get('by'))}"
                         + (f": {render.safe_text(error['reason'])}"
                            if error.get("reason") else ""))
    if data["cancelled_from"] == "paused":
        render.console.print("It was paused; its checkpoint is discarded, so it cannot be "
                             "resumed or retried.")
    elif data["finally_ran"]:
        render.console.print("It was running: its step was stopped and the finally "
                             "blocks of its scopes ran.")
    else:
        render.console.print("It was left running by an agent that stopped: no agent ran "
                             "it, so no finally block ran.")
    children = data.get("children_cancelled") or []
    if children:
        render.console.print("Its child instances were cancelled with it: "
                             + ", ".join(render.safe_text(c) for c in children))
