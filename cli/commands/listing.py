"""`procctl list`: instances, newest first, from the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from procctl.cli import render
from procctl.cli.options import global_options, has_store, no_home_note, nothing_text, read_store
from procctl.store.records import InstanceRecord, Status

STATUSES = tuple(Status)


def table_row(record: InstanceRecord) -> dict[str, Any]:
    """The fields of an instance's summary (agent/summary.py) that the table shows: the
    table does without decoding every instance's params and result (and without the
    value codec's import), which only --json prints."""
    return {"instance_id": record.id, "process": record.process_name,
            "status": str(record.status), "started_at": record.started_at,
            "ended_at": record.ended_at}


def list_command(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only instances with this status ({', '.join(STATUSES)}).")] = None,
    process: Annotated[str | None, typer.Option("--process", help="Only this process.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List instances, newest first."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"{status!r} is not one of {', '.join(STATUSES)}",
                                 param_hint="--status")
    options = global_options(ctx)
    home = options.home
    if not has_store(home):
        rows = []
    else:
        records = read_store(home, lambda store: store.list_instances(
            status=None if status is None else Status(status), process_name=process, limit=limit))
        if as_json:
            from procctl.agent.summary import instance_summary

            rows = [instance_summary(record) for record in records]
        else:
            rows = [table_row(record) for record in records]
    if as_json:
        render.print_json(rows)
        note = no_home_note(home)
        if note is not None:
            render.note(note)
        return
    if not rows:
        filters = ", ".join(f"{name} {value}" for name, value
                            in (("status", status), ("process", process)) if value)
        render.print_line(nothing_text("instances", home, filters))
        return
    render.print_instances(rows)
