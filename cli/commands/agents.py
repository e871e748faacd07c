"""`procctl agents`: the agents that share this home's store, read from the store (the
home's own agent need not run).

With SQLite that is the home's one agent; with PostgreSQL every agent that uses the
server, whatever its host. An agent is alive while its lease runs; one whose lease ran
out without a clean stop has lost it (its peers take its instances over).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from procctl.agent.durations import format_duration
from procctl.cli import plain, render
from procctl.cli.options import global_options, has_store, no_home_note, nothing_text, read_store

if TYPE_CHECKING:
    from procctl.store.records import AgentRecord

#: stopped agents are listed this long after they stopped (all of them with --all)
STOPPED_SHOWN_SECONDS = 3600.0
COLUMNS = tuple(plain.Column((name,)) for name in (
    "AGENT", "HOST", "POOL", "PID", "STATE", "LEASE", "INSTANCES"))
#: the least useful first (an agent's ID starts with its host)
SHRINK = (("drop", "PID"), ("drop", "HOST"), ("drop", "POOL"))
STATE_STYLES = {"alive": "green", "lease lost": "red", "stopped": None}


def state(agent: AgentRecord) -> str:
    """alive, lease lost (its lease ran out, it never stopped cleanly) or stopped."""
    if agent.stopped_at:
        return "stopped"
    return "alive" if agent.alive else "lease lost"


def relative(iso: str | None, now: datetime) -> str:
    """`in 24s`, `12s ago`, `in 5m 3s`: `iso` seen from `now`; `-` for none."""
    if not iso:
        return "-"
    seconds = (_aware(iso) - now).total_seconds()
    size = abs(seconds)
    text = f"{size:.0f}s" if size < 60 else format_duration(size)
    return f"in {text}" if seconds >= 0 else f"{text} ago"


def shown(agents: list[AgentRecord], now: datetime, *, show_all: bool) -> list[AgentRecord]:
    """The agents to list: all of them, or all but those stopped over an hour ago."""
    if show_all:
        return agents
    return [a for a in agents if not a.stopped_at
            or (now - _aware(a.stopped_at)).total_seconds() <= STOPPED_SHOWN_SECONDS]


def to_json(agent: AgentRecord) -> dict[str, Any]:
    return {"id": agent.id, "host": agent.host, "pool": agent.pool, "home": agent.home,
            "pid": agent.pid, "version": agent.version, "state": state(agent),
            "alive": agent.alive, "started_at": agent.started_at,
            "lease_until": agent.lease_until, "stopped_at": agent.stopped_at,
            "owned": agent.owned}


def agents_command(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option(
        "--all", help="Agents that stopped over an hour ago too.")] = False,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column, however wide the terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List the agents sharing this home's store: host, pool, state, lease, instances."""
    options = global_options(ctx)
    home = options.home
    agents: list[AgentRecord] = []
    if has_store(home):
        agents = read_store(home, lambda store: store.list_agents())
    now = datetime.now(UTC)
    listed = shown(agents, now, show_all=show_all)
    if as_json:
        render.print_json([to_json(agent) for agent in listed])
        note = no_home_note(home)
        if note is not None:
            render.note(note)
        return
    if not listed:
        render.print_line(nothing_text("agents", home))
    else:
        _print_table(listed, now, wide=wide)
    hidden = len(agents) - len(listed)
    if hidden:
        render.note(f"{hidden} agent(s) that stopped over an hour ago not shown; "
                    "procctl agents --all lists them")


def _print_table(agents: list[AgentRecord], now: datetime, *, wide: bool) -> None:
    """The table, fitted to the terminal (cli/plain.py): the agent's ID is never cut."""
    cells: list[list[plain.Cell]] = [
        [render.neutralise(agent.id), render.neutralise(agent.host),
         render.neutralise(agent.pool), str(agent.pid), state(agent),
         relative(agent.lease_until, now), str(agent.owned)] for agent in agents]
    styles = [[None, None, None, None, STATE_STYLES[state(agent)], None, None]
              for agent in agents]
    render.print_table(COLUMNS, cells, shrink=SHRINK, styles=styles, wide=wide)


def _aware(iso: str) -> datetime:
    moment = datetime.fromisoformat(iso)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
