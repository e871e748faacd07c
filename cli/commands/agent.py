"""`procctl agent start|stop|status|run`."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from procctl.agent.client import AgentClient
from procctl.agent.durations import format_duration
from procctl.agent.errors import AgentUnreachable
from procctl.cli import render
from procctl.cli.options import global_options

app = typer.Typer(help="Start, stop and inspect the agent for a home.", no_args_is_help=True)

EXIT_NOT_RUNNING = 4
STOP_TIMEOUT = 60.0


@app.command("run")
def run_foreground(ctx: typer.Context) -> None:
    """Run the agent in the foreground (for systemd or a supervisor); Ctrl-C stops it."""
    from procctl.agent.daemon import run_agent  # the daemon's imports only when it runs

    options = global_options(ctx)
    run_agent(options.home, foreground=True)


@app.command("start")
def start(ctx: typer.Context) -> None:
    """Start the agent in the background, unless one already runs."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    started = client.start_background()
    status = client.request("status")
    verb = "Started" if started else "Already running:"
    render.console.print(f"{verb} agent pid {status['pid']} for home {status['home']}")


@app.command("stop")
def stop(ctx: typer.Context) -> None:
    """Stop the agent; running steps get the shutdown grace time to finish."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    try:
        data = client.request("stop")
    except AgentUnreachable:
        render.console.print(f"No agent is running for home {options.home.home}")
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and options.home.socket.exists():
        time.sleep(0.05)
    render.console.print(f"Stopped agent pid {data['pid']}")


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Is an agent running for this home? Exit code 4 when none is."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    try:
        data = client.request("status", timeout=5)
    except AgentUnreachable:
        if as_json:
            render.print_json({"running": False, "home": str(options.home.home)})
        else:
            render.console.print(f"No agent is running for home {options.home.home}")
        raise typer.Exit(EXIT_NOT_RUNNING) from None
    if as_json:
        render.print_json({"running": True, **data})
        return
    render.console.print(render.key_value_table([
        ("Agent", "[green]running[/]"),
        ("PID", str(data["pid"])),
        ("Home", data["home"]),
        ("Version", data["version"]),
        ("Uptime", format_duration(data["uptime_seconds"])),
        ("Instances running", str(data["instances_running"])),
    ]))
