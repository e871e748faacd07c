"""`procctl follow ID`: attach to an instance, whatever started it, and print its steps
from where it is until it pauses or ends."""

from __future__ import annotations

from typing import Annotated

import typer

from procctl.agent.client import AgentClient
from procctl.agent.messages import FollowRequest
from procctl.cli import following, render
from procctl.cli.options import global_options
from procctl.cli.outcome import EXIT_INSTANCE_FAILED, print_outcome
from procctl.store.records import Status


def follow_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON object per event, a line each, then the outcome.")] = False,
) -> None:
    """Follow an instance: print its steps from where it is until it pauses or ends.

    Ctrl-C stops following, not the instance. Exit code 1 when it failed."""
    options = global_options(ctx)
    client = AgentClient(options.home)
    client.start_background(on_start=lambda: render.note(
        f"Starting the agent in the background for home {options.home.home}"))
    stream = client.stream(FollowRequest(instance_id), timeout=None)
    summary = following.follow(stream, instance_id=instance_id, json_lines=as_json)
    if as_json:
        print(render_json_line(summary), flush=True)
    else:
        print_outcome(summary)
    if summary.get("status") == Status.FAILED:
        raise typer.Exit(EXIT_INSTANCE_FAILED)


def render_json_line(summary: dict[str, object]) -> str:
    import json

    return json.dumps({"kind": "outcome", "data": summary}, ensure_ascii=False)
