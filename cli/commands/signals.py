"""`procctl signals`: pending, rejected, unmatched and duplicate signals, with reasons."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from procctl.agent import signals as protocol
from procctl.agent.config import load_config
from procctl.agent.summary import signal_summary
from procctl.cli import render
from procctl.cli.options import global_options, has_store, read_store
from procctl.store.records import SignalStatus

SHOWN = (SignalStatus.PENDING, SignalStatus.REJECTED, SignalStatus.UNMATCHED,
         SignalStatus.DUPLICATE)


def signals_command(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Applied signals too.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Signals that did not resume anything (yet), and files not read yet."""
    options = global_options(ctx)
    statuses = (*SHOWN, SignalStatus.APPLIED) if show_all else SHOWN
    rows: list[dict[str, Any]] = []
    if has_store(options.home):
        rows = read_store(options.home, lambda store: [
            signal_summary(r) for r in store.list_signals(statuses, limit)])
    directory = options.home.signals_dir(str(load_config(options.home.config)["signals_dir"]))
    waiting = [str(p) for p in protocol.scan(directory)]
    if as_json:
        render.print_json({"signals": rows, "unread_files": waiting})
        return
    if not rows and not waiting:
        render.console.print("No pending, rejected or unmatched signals.")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("RECEIVED", "STATUS", "CORRELATION ID", "SOURCE", "REASON"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(render.short_time(row["received_at"]), row["status"],
                      render.safe_text(row["correlation_id"] or "-"),
                      render.safe_text(row["source"]), render.safe_text(row["reason"] or ""))
    if rows:
        render.console.print(table)
    if waiting:
        render.console.print(f"{len(waiting)} file(s) not read yet in "
                             f"{render.safe_text(directory)}"
                             " (is the agent running?)")
