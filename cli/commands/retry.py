"""`procctl retry INSTANCE`: go on with a failed (or held) instance once its cause is fixed."""

from __future__ import annotations

from typing import Annotated

import typer

from procctl.agent.client import AgentClient
from procctl.cli import render
from procctl.cli.options import global_options
from procctl.cli.outcome import EXIT_INSTANCE_FAILED, print_outcome
from procctl.store.records import Status


def retry_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Retry a failed or held instance: from its last checkpoint through the checkpoint's
    recover block, or, with no checkpoint, from the beginning with the same params."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    client.start_background(on_start=lambda: render.note(
        f"Starting the agent in the background for home {options.home.home}"))
    summary: dict[str, object] = {}
    for kind, payload in client.stream("retry", instance_id=instance_id, timeout=None):
        if kind == "result":
            summary = payload
            break
        if as_json:
            continue
        if payload["kind"] == "retry":
            render.console.print(f"Instance {render.safe_text(payload['instance_id'])}: "
                                 f"{render.safe_text(payload['data']['action'])}")
        line = render.step_line(payload)
        if line:
            render.console.print(line)
    if as_json:
        render.print_json(summary)
    else:
        print_outcome(summary)
    if summary.get("status") == Status.FAILED:
        raise typer.Exit(EXIT_INSTANCE_FAILED)
