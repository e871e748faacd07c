"""`procctl run FILE`: validate locally, hand the definition to the agent, follow it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.definition import load_definition, parse_assignments, resolve_params
from procctl.agent.errors import AgentUnreachable, UsageError
from procctl.cli import following, render
from procctl.cli.options import global_options
from procctl.cli.outcome import EXIT_INSTANCE_FAILED, print_outcome
from procctl.store.records import Status


def run_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The process definition (TOML).")],
    wait: Annotated[bool, typer.Option("--wait", "-w",
                                       help="Follow the instance and print its result.")] = False,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", metavar="NAME=VALUE",
        help="A param: its name and value (repeatable).")] = None,
    params_file: Annotated[Path | None, typer.Option(
        "--params-file", help="A JSON object of params.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
    no_autostart: Annotated[bool, typer.Option(
        "--no-autostart", help="Fail instead of starting an agent when none runs.")] = False,
) -> None:
    """Run a process definition on the agent (started in the background if needed)."""
    options = global_options(ctx)
    definition = load_definition(file)
    for warning in definition.warnings:
        render.problem(warning)
    params = resolve_params(
        definition.params,
        from_file=_read_params_file(params_file) if params_file else None,
        from_cli=parse_assignments(param or []),
        process_name=definition.name,
    )
    client = AgentClient(options.home)
    if no_autostart:
        if not client.is_running():
            raise AgentUnreachable(f"no agent is running for home {options.home.home}",
                                   hint="start one with: procctl agent start")
    else:
        # Also waits for an agent that another command is starting; the run is taken
        # while the agent still applies the signal files that waited for it.
        client.start_background(on_start=lambda: render.note(
            f"Starting the agent in the background for home {options.home.home}"))
    request: dict[str, Any] = {
        "source": definition.source,
        "file": str(file.resolve()),
        "base_dir": str(file.resolve().parent),
        "params": values.encode(params),
        "wait": wait,
    }
    if not wait:
        data = client.request("run", **request)
        if as_json:
            render.print_json(data)
        else:
            render.console.print(f"Started [bold]{render.safe_text(data['instance_id'])}[/] "
                                 f"({render.safe_text(definition.name)})")
            render.note(f"Follow it with: procctl follow {data['instance_id']}")
        return
    summary = _follow(client, request, definition.name, quiet=as_json)
    if as_json:
        render.print_json(summary)
    else:
        print_outcome(summary)
    if summary["status"] == Status.FAILED:
        raise typer.Exit(EXIT_INSTANCE_FAILED)


def _follow(client: AgentClient, request: dict[str, Any], name: str,
            *, quiet: bool) -> dict[str, Any]:
    """Run and follow the instance (cli/following.py prints its steps; Ctrl-C says how
    to follow it again), with a spinner naming the step that runs."""
    status = None if quiet else render.console.status(f"running {render.safe_text(name)}")

    def on_event(payload: dict[str, Any]) -> bool:
        if quiet:
            return False
        if payload["kind"] == "instance_created":
            render.console.print(f"[bold]{render.safe_text(name)}[/] instance "
                                 f"[bold]{render.safe_text(payload['instance_id'])}[/]")
            return True
        if status and payload["kind"] == "step_started":
            status.update(f"running [bold]{render.safe_text(payload['step_id'])}[/]")
        return False

    if status:
        status.start()
    try:
        return following.follow(client.stream("run", **request), quiet=quiet,
                                on_event=on_event)
    finally:
        if status:
            status.stop()


def _read_params_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UsageError(f"params file {path} does not exist") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"params file {path}:{exc.lineno}: not JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise UsageError(f"params file {path} must hold a JSON object",
                         hint='for example {"count": 3}')
    return data
