"""`procctl list-paused`: what waits, for what, and until when. Reads the store."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from procctl.agent.summary import resume_command
from procctl.cli import render
from procctl.cli.options import global_options, read_store
from procctl.store import StoreContract
from procctl.store.records import PausedRow


def _row(row: PausedRow) -> dict[str, Any]:
    checkpoint = row.checkpoint
    return {
        "correlation_id": checkpoint.correlation_id,
        "instance_id": row.instance.id,
        "process": row.instance.process_name,
        "checkpoint": checkpoint.step_id,
        "paused_at": row.instance.paused_at,
        "expires_at": checkpoint.expires_at,
        "resume_at": checkpoint.resume_at,
        "iteration": checkpoint.iteration,
        "bytes": checkpoint.size,
        "resume_command": resume_command(checkpoint.correlation_id),
    }


def list_paused_command(
    ctx: typer.Context,
    process: Annotated[str | None, typer.Option("--process", help="Only this process.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help="At most this many (default: 200 in a table, all with --json).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List paused instances, newest first: correlation ID, expiry, next scheduled resume."""
    options = global_options(ctx)
    rows: list[dict[str, Any]] = []
    total = 0
    if limit is None:
        limit = -1 if as_json else 200  # SQLite: a negative LIMIT is no limit
    if options.home.exists() and options.home.db.exists():
        def read(store: StoreContract) -> tuple[list[dict[str, Any]], int]:
            found = [_row(r) for r in store.list_paused(process_name=process, limit=limit)]
            return found, store.count_paused() if process is None else len(found)

        rows, total = read_store(options.home, read)
    if as_json:
        render.print_json(rows)
        if not options.home.exists():
            render.note(render.no_home(options.home.home))
        return
    if not rows:
        render.console.print(render.nothing_in_home(
            "paused instances", options.home.home, f"process {process}" if process else "",
            exists=options.home.exists()))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("CORRELATION ID", "INSTANCE", "PROCESS", "CHECKPOINT", "PAUSED SINCE",
                   "EXPIRES", "NEXT RESUME", "ITER", "SIZE"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(render.safe_text(row["correlation_id"]), row["instance_id"],
                      render.safe_text(row["process"]), render.safe_text(row["checkpoint"]),
                      render.short_time(row["paused_at"]),
                      render.until(row["expires_at"]), render.until(row["resume_at"]),
                      str(row["iteration"]), f"{row['bytes']} B")
    render.console.print(table)
    if total > len(rows):
        render.note(f"Showing the newest {len(rows)} of {total}; --limit N or --json for more.")
    render.note("Resume one with: procctl resume --correlation-id ID [--data key=value]")
