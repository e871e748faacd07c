"""`procctl agent start|stop|status|run`."""

from __future__ import annotations

import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from procctl.agent.client import AgentClient
from procctl.agent.durations import format_duration
from procctl.agent.errors import AgentUnreachable
from procctl.agent.paths import HomePaths
from procctl.cli import render
from procctl.cli.options import global_options

app = typer.Typer(help="Start, stop and inspect the agent for a home.", no_args_is_help=True)

EXIT_NOT_RUNNING = 4
#: `agent status`: the agent runs but cannot do its work (degraded, waiting for disk or
#: for the store's server)
EXIT_DEGRADED = 9
TROUBLE = ("degraded", "waiting_for_disk", "waiting_for_store")
STATE_STYLES = {"ready": "green", "starting": "cyan", "stopping": "yellow",
                "degraded": "bold red", "waiting_for_disk": "bold red",
                "waiting_for_store": "bold red"}
STOP_TIMEOUT = 60.0


@app.command("run")
def run_foreground(ctx: typer.Context) -> None:
    """Run the agent in the foreground (for systemd or a supervisor); Ctrl-C stops it."""
    from procctl.agent.daemon import run_agent  # the daemon's imports only when it runs

    options = global_options(ctx)
    run_agent(options.home, foreground=True)


@app.command("start")
def start(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Start the agent in the background, unless one already runs.

    Returns once the agent answers and has opened its store; it may still be
    recovering instances or applying the signal files that waited for it."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    started, status = client.start_background()
    if as_json:
        render.print_json({"started": started, **status})
    else:
        verb = "Started" if started else "Already running:"
        render.console.print(f"{verb} agent pid {status['pid']} for home {status['home']}")
    if status.get("state") == "starting":
        render.note(f"It is still starting: {startup_text(status)}; "
                    "follow it with: procctl agent status")
    for line in trouble_lines(status):
        render.note(f"Warning: {line}; procctl agent status shows when it is over")


@app.command("stop")
def stop(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Stop the agent; running steps get the shutdown grace time to finish.

    While it waits, it says for what: the instances still running and the grace they
    get (the shutdown_grace setting)."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    began = time.monotonic()
    try:
        data = client.request("stop")
    except AgentUnreachable:
        if as_json:
            render.print_json({"stopped": False, "running": False,
                               "home": str(options.home.home)})
        else:
            render.console.print(f"No agent is running for home {options.home.home}")
        return
    running = data.get("instances_running")
    if running:
        render.note(waiting_text(running, _grace(options.home)))
    stopped = _wait_gone(options.home, began, announce=not running)
    waited = round(time.monotonic() - began, 3)
    if as_json:
        render.print_json({"stopped": stopped, "pid": data["pid"],
                           "instances_running": running, "waited_seconds": waited})
    elif stopped:
        render.console.print(f"Stopped agent pid {data['pid']}")
    if not stopped:
        raise AgentUnreachable(
            f"the agent pid {data['pid']} did not stop within {STOP_TIMEOUT:g}s",
            hint=f"see its log: {options.home.log}")


def waiting_text(running: int, grace: str | None) -> str:
    """What `agent stop` waits for: the instances running when it asked, and the grace
    they get."""
    what = "1 running instance" if running == 1 else f"{running} running instances"
    given = f" (shutdown_grace {grace})" if grace else ""
    return f"Waiting for {what} to finish{given}..."


def _grace(home: HomePaths) -> str | None:
    """The shutdown_grace setting as the home's config.toml has it (the agent read the
    file when it started), or None when the file cannot be read."""
    from procctl.agent.config import load_config
    from procctl.agent.errors import AgentError

    try:
        return str(load_config(home.config)["shutdown_grace"])
    except (AgentError, OSError):
        return None


def _wait_gone(home: HomePaths, began: float, *, announce: bool) -> bool:
    """Wait until the home's socket is gone (the agent has stopped), up to
    STOP_TIMEOUT; after a second, say so once when nothing was said yet."""
    deadline = began + STOP_TIMEOUT
    said = not announce
    while home.socket.exists():
        now = time.monotonic()
        if now >= deadline:
            return False
        if not said and now - began > 1.0:
            render.note("Waiting for the agent to finish its store work and stop...")
            said = True
        time.sleep(0.05)
    return True


@app.command("status")
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Is an agent running for this home, and how is it? Exit code 4 when none is, 9
    when it is degraded or waits for disk space."""
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
    state = str(data.get("state", "ready"))
    if as_json:
        render.print_json({"running": True, **data})
    else:
        rows = [
            ("Agent", f"[{STATE_STYLES.get(state, 'white')}]{state.replace('_', ' ')}[/]"),
            ("PID", str(data["pid"])),
            ("Home", data["home"]),
            *shared_store_rows(data),
            ("Version", data["version"]),
            ("Uptime", format_duration(data["uptime_seconds"])),
            ("Instances running", str(data["instances_running"])),
        ]
        if data.get("startup", {}).get("phase", "done") != "done":
            rows.append(("Start-up", escape(startup_text(data))))
        rows += [("Problem", escape(line)) for line in trouble_lines(data)]
        render.console.print(render.key_value_table(rows))
    if state in TROUBLE:
        raise typer.Exit(EXIT_DEGRADED)


def shared_store_rows(status: dict[str, Any]) -> list[tuple[str, str]]:
    """The agent's ID, pool, store and lease, as markup rows: those the agent gave (an
    agent older than the shared store gives none of them)."""
    from datetime import UTC, datetime

    from procctl.cli.commands.agents import relative
    from procctl.store.urls import redacted

    rows = []
    if status.get("agent_id"):
        rows.append(("Agent ID", render.safe_text(status["agent_id"])))
    if status.get("pool"):
        rows.append(("Pool", render.safe_text(status["pool"])))
    if status.get("store"):
        rows.append(("Store", render.safe_text(redacted(str(status["store"])))))
    if status.get("lease_seconds") is not None:
        seconds = float(status["lease_seconds"])
        lease = f"{seconds:g}s" if seconds < 60 else format_duration(seconds)
        until = status.get("lease_until")
        if until:
            lease += (f", until {render.short_time(until)} "
                      f"({relative(until, datetime.now(UTC))})")
        rows.append(("Lease", render.safe_text(lease)))
    return rows


def startup_text(status: dict[str, Any]) -> str:
    """How far a starting agent has come, in words."""
    startup = status.get("startup") or {}
    phase = startup.get("phase")
    if phase == "opening_store":
        return "opening the store"
    if phase == "recovering":
        done, total = _counts(startup.get("instances"))
        return f"recovering interrupted instances ({done} of {total})"
    done, total = _counts(startup.get("signal_files"))
    return f"applying the signal files that waited ({done} of {total})"


def trouble_lines(status: dict[str, Any]) -> list[str]:
    """What keeps the agent from its work: a full disk, parts that keep failing."""
    lines = []
    disk = status.get("disk_wait")
    if disk:
        lines.append(f"the disk is full: store work waits for free space since "
                     f"{render.short_time(disk['since'])} ({disk['error']})")
    server = status.get("store_wait")
    if server:
        lines.append(f"the store does not answer: store work waits for it since "
                     f"{render.short_time(server['since'])} ({server['error']})")
    for problem in status.get("problems") or []:
        if problem.get("degraded"):
            lines.append(f"the {problem['component']} has failed {problem['failures']} "
                         f"times in a row since {render.short_time(problem['since'])}: "
                         f"{problem['error']}")
    return lines


def _counts(progress: Any) -> tuple[str, str]:
    progress = progress or {}
    total = progress.get("total")
    return f"{progress.get('done', 0):,}", "?" if total is None else f"{total:,}"
