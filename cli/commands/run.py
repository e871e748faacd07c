"""`procctl run FILE`: validate locally, hand the definition to the agent, follow it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.definition import load_definition, parse_assignments, resolve_params
from procctl.agent.errors import AgentUnreachable, UsageError
from procctl.cli import render
from procctl.cli.options import global_options
from procctl.store.records import Status

EXIT_INSTANCE_FAILED = 1


def run_command(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="The process definition (TOML).")],
    wait: Annotated[bool, typer.Option("--wait", "-w",
                                       help="Follow the instance and print its result.")] = False,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="A param as name=value (repeatable).")] = None,
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
            render.note(f"Follow it with: procctl show {data['instance_id']}")
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
    summary: dict[str, Any] = {}
    status = None if quiet else render.console.status(f"running {render.safe_text(name)}")
    if status:
        status.start()
    try:
        for kind, payload in client.stream("run", **request):
            if kind == "result":
                summary = payload
                break
            if quiet:
                continue
            if payload["kind"] == "instance_created":
                render.console.print(f"[bold]{render.safe_text(name)}[/] instance "
                                     f"[bold]{render.safe_text(payload['instance_id'])}[/]")
            elif status and payload["kind"] == "step_started":
                status.update(f"running [bold]{render.safe_text(payload['step_id'])}[/]")
            line = render.step_line(payload)
            if line:
                render.console.print(line)
    finally:
        if status:
            status.stop()
    return summary


def print_outcome(summary: dict[str, Any]) -> None:
    """How an instance stands after `run --wait` or `resume`: result, error or pause."""
    if "intermediate" in summary:
        render.console.print("[bold]Intermediate result:[/] "
                             + escape(render.value_text(summary["intermediate"])))
        render.note(f"The instance goes on; follow it with: procctl show {summary['instance_id']}")
        return
    took = render.elapsed(summary["started_at"], summary["ended_at"])
    state = render.status_text(summary["status"])
    if summary["status"] == Status.PAUSED and not summary.get("checkpoint"):
        error = summary.get("error") or {}
        render.console.print(f"{state} (held: {render.safe_text(error.get('message'))})")
        render.console.print("Run it again with: "
                             + render.safe_text(summary.get("retry_command")))
        return
    if summary["status"] == Status.PAUSED and summary.get("waiting_for"):
        checkpoint = summary.get("checkpoint") or {}
        render.console.print(f"{state} at call [bold]{render.safe_text(checkpoint.get('step_id'))}"
                             "[/]: waiting for "
                             + escape(render.waiting_text(summary["waiting_for"])))
        return
    if summary["status"] == Status.PAUSED:
        checkpoint = summary.get("checkpoint") or {}
        step_id = render.safe_text(checkpoint.get("step_id"))
        correlation = render.safe_text(summary["correlation_id"])
        render.console.print(f"{state} at checkpoint [bold]{step_id}[/], "
                             f"correlation ID [bold]{correlation}[/]")
        if checkpoint.get("resume_at"):
            render.console.print("Resumes by itself at "
                                 + render.short_time(checkpoint["resume_at"]))
        render.console.print("Resume it with: " + render.safe_text(summary["resume_command"]))
        return
    render.console.print(f"{state} in {took}")
    if summary["status"] == Status.COMPLETED:
        if summary["result"] is not None:
            render.console.print("[bold]Result:[/] " + escape(render.value_text(summary["result"])))
        return
    error = summary.get("error") or {}
    where = f" at step {error['step_id']!r}" if error.get("step_id") else ""
    render.error(f"instance {summary['instance_id']} failed{where}: {error.get('message')}",
                 f"see its history with: procctl show {summary['instance_id']}")
    if summary.get("resume_command"):
        render.note("It holds a checkpoint: once the cause is fixed, go on from it with: "
                    + str(summary["retry_command"]))
    elif summary.get("retry_command"):
        render.note("Once the cause is fixed, run it again with: "
                    + str(summary["retry_command"]))


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
