"""`procctl retry INSTANCE`: go on with a failed (or held) instance once its cause is fixed."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from procctl.agent.client import AgentClient
from procctl.cli import following, render
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

    def on_event(payload: dict[str, Any]) -> bool:
        if payload["kind"] != "retry":
            return False
        if not as_json:
            render.console.print(f"Instance {render.safe_text(payload['instance_id'])}: "
                                 f"{render.safe_text(payload['data']['action'])}")
        return True

    # cli/following.py prints the steps; Ctrl-C says how to follow the instance again
    summary = following.follow(
        client.stream("retry", instance_id=instance_id, timeout=None),
        instance_id=instance_id, quiet=as_json, on_event=on_event)
    if as_json:
        render.print_json(summary)
    else:
        print_outcome(summary)
    if summary.get("status") == Status.FAILED:
        raise typer.Exit(EXIT_INSTANCE_FAILED)
