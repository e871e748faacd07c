"""`procctl wait ID`: wait silently until an instance pauses or ends; the exit code
says how it stands."""

from __future__ import annotations

from typing import Annotated

import typer

from procctl.agent.client import AgentClient
from procctl.agent.durations import parse_duration
from procctl.agent.errors import AgentUnreachable, UsageError
from procctl.agent.messages import FollowRequest
from procctl.cli import following, render
from procctl.cli.options import global_options

#: the exit codes of `procctl wait`, by how the instance stands
EXIT_CODES = {"completed": 0, "failed": 1, "paused": 10, "cancelled": 11}
#: still running when --timeout ran out
EXIT_TIMEOUT = 12


def wait_command(
    ctx: typer.Context,
    instance_id: Annotated[str, typer.Argument(help="Instance ID (a unique prefix will do).")],
    timeout: Annotated[str | None, typer.Option(
        "--timeout", metavar="DURATION",
        help="Give up after this long (e.g. 30s, 5m); exit code 12.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Wait until an instance pauses or ends; the exit code says how it stands.

    Prints nothing (unless --json): exit code 0 completed, 1 failed, 10 paused,
    11 cancelled, 12 still running after --timeout."""
    options = global_options(ctx)
    seconds = None
    if timeout is not None:
        try:
            seconds = parse_duration(timeout)
        except ValueError as exc:
            raise UsageError(f"--timeout {timeout!r}: {exc}",
                             hint="give a duration such as 30s, 5m or 1h") from None
    client = AgentClient(options.home)
    client.start_background(on_start=lambda: render.note(
        f"Starting the agent in the background for home {options.home.home}"))
    stream = client.stream(FollowRequest(instance_id, quiet=True), timeout=seconds)
    try:
        summary = following.follow(stream, instance_id=instance_id, quiet=True)
    except AgentUnreachable as exc:
        if seconds is None or "in time" not in exc.message:
            raise
        if not as_json:
            render.note(f"Instance {instance_id} is still running after {timeout}.")
        raise typer.Exit(EXIT_TIMEOUT) from None
    status = str(summary.get("status"))
    if as_json:
        render.print_json(summary)
    raise typer.Exit(EXIT_CODES.get(status, 0))
