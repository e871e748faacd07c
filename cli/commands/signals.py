"""`procctl signals`: pending, rejected, unmatched and duplicate signals, with reasons;
`--clear --older-than D` removes the old ones and old signal files.

The table fits the terminal (cli/plain.py): at 80 columns RECEIVED is shortened and
SOURCE dropped before a correlation ID would be touched, and REASON is cut to the room
left (`--wide` keeps all, piped output is never cut). Clearing works on the store
itself, with or without an agent, in batches (store/retention.py); pending signals are
never cleared.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent import signals as protocol
from procctl.agent.config import load_config
from procctl.agent.durations import parse_duration
from procctl.agent.errors import UsageError
from procctl.agent.paths import HomePaths
from procctl.agent.retention import cut_before, old_signal_files
from procctl.agent.summary import signal_summary
from procctl.cli import plain, render
from procctl.cli.options import global_options, has_store, open_home_store, read_store
from procctl.store.records import SignalStatus

SHOWN = (SignalStatus.PENDING, SignalStatus.REJECTED, SignalStatus.UNMATCHED,
         SignalStatus.DUPLICATE)
COLUMNS = (plain.Column(("RECEIVED", "RECEIVED")), plain.Column(("STATUS",)),
           plain.Column(("CORRELATION ID",)), plain.Column(("SOURCE",)),
           plain.Column(("REASON",), free=True, least=20))
#: the least useful first; the correlation ID is never touched
SHRINK = (("short", "RECEIVED"), ("drop", "SOURCE"))
#: signal records removed per transaction
CLEAR_BATCH = 500
EXAMPLE = "procctl signals --clear --older-than 7d"


def signals_command(
    ctx: typer.Context,
    show_all: Annotated[bool, typer.Option("--all", help="Applied signals too.")] = False,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 200,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column whole, however wide the table.")] = False,
    clear: Annotated[bool, typer.Option(
        "--clear", help="Remove old rejected, unmatched and duplicate signals, and old "
        "files in processed/ and rejected/ (with --older-than).")] = False,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="DURATION",
        help="With --clear: only what is older than this: 7d, 12h, 2w.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="With --clear: only say what would go.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Signals that did not resume anything (yet), and files not read yet.

    --clear --older-than D removes the rejected, unmatched and duplicate ones received
    more than D ago, and the files filed in processed/ and rejected/ before then.
    """
    options = global_options(ctx)
    directory = options.home.signals_dir(str(load_config(options.home.config)["signals_dir"]))
    if clear:
        _clear(options.home, directory, _older_than(older_than), dry_run=dry_run,
               as_json=as_json)
        return
    if older_than is not None or dry_run:
        raise UsageError(f"{'--older-than' if older_than is not None else '--dry-run'} "
                         "goes with --clear", hint=f"for example: {EXAMPLE}")
    statuses = (*SHOWN, SignalStatus.APPLIED) if show_all else SHOWN
    rows: list[dict[str, Any]] = []
    if has_store(options.home):
        rows = read_store(options.home, lambda store: [
            signal_summary(r) for r in store.list_signals(statuses, limit)])
    waiting = [str(p) for p in protocol.scan(directory)]
    if as_json:
        render.print_json({"signals": rows, "unread_files": waiting})
        return
    if not rows and not waiting:
        render.print_line("No pending, rejected or unmatched signals.")
        return
    if rows:
        render.print_table(COLUMNS, [[
            (render.short_time(row["received_at"]), render.compact_time(row["received_at"])),
            row["status"], render.neutralise(row["correlation_id"] or "-"),
            render.neutralise(row["source"]), render.neutralise(row["reason"] or "")]
            for row in rows], shrink=SHRINK, wide=wide)
    if waiting:
        render.print_line(f"{len(waiting)} file(s) not read yet in "
                          f"{render.neutralise(str(directory))} (is the agent running?)")


def _older_than(text: str | None) -> float:
    if text is None:
        raise UsageError("--clear needs --older-than: how old a signal must be to go",
                         hint=f"for example: {EXAMPLE}")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}", hint=f"for example: {EXAMPLE}") from None


def _clear(home: HomePaths, directory: Path, older_than: float, *, dry_run: bool,
           as_json: bool) -> None:
    """Old signal records from the store (rejected, unmatched, duplicate; a batch per
    transaction), then old files from processed/ and rejected/."""
    before = cut_before(older_than)
    records = 0
    if has_store(home):
        if dry_run:
            records = read_store(home, lambda store: store.count_old_signals(before))
        else:
            store = open_home_store(home, must_exist=True)
            try:
                while True:
                    cleared = store.clear_old_signals(before, CLEAR_BATCH)
                    records += cleared
                    if cleared < CLEAR_BATCH:
                        break
            finally:
                store.close()
    sweep = old_signal_files(directory, older_than)
    files = len(sweep.files) if dry_run else sweep.remove()
    if as_json:
        render.print_json({
            "dry_run": dry_run, "before": before, "records": records, "files": files,
            "folders": [str(folder) for folder in sweep.folders],
            "not_removed": [{"file": str(path), "reason": reason}
                            for path, reason in sweep.failed]})
        return
    verb = "Would clear" if dry_run else "Cleared"
    render.print_line(
        f"{verb} {records:,} signal record{'' if records == 1 else 's'} received before "
        f"{render.short_time(before)} (rejected, unmatched, duplicate).")
    render.print_line(
        f"{verb} {files:,} file{'' if files == 1 else 's'} filed before then in "
        f"{render.neutralise(str(directory / protocol.PROCESSED))} and "
        f"{protocol.REJECTED}.")
    for path, reason in sweep.failed:
        render.note(f"Not removed: {path}: {reason}")
