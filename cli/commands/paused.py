"""`procctl list-paused`: what waits, for what, and until when. Reads the store.

Newest first, in pages by key: each page is read from the index of paused instances
after the last row of the one before (`--after CURSOR`, the `cursor` of that row), so
a page costs the same at the millionth row as at the first. The table shows one page
and counts no further than COUNT_CAP; `--json` streams every row (or `--limit` rows) as
a JSON array written a page at a time, in bounded memory.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from procctl.agent.errors import DefinitionError, UsageError
from procctl.agent.paths import HomePaths
from procctl.agent.summary import resume_command
from procctl.cli import plain, render
from procctl.cli.options import (
    global_options,
    has_store,
    no_home_note,
    nothing_text,
    older_schema_note,
    open_home_store,
)
from procctl.store import StoreContract, StoreError
from procctl.store.errors import NotFound
from procctl.store.records import PausedRow
from procctl.store.schema import SCHEMA_VERSION

#: rows a table shows unless --limit says otherwise
TABLE_ROWS = 50
#: rows read per page while --json streams
PAGE = 1000
#: the table's count stops here ("more than 10,000"): counting a million paused
#: instances reads a million index entries
COUNT_CAP = 10_000

Key = tuple[str, str]


def cursor(row: PausedRow) -> str:
    """Where the next page starts: the row's pause time and instance ID."""
    return f"{row.instance.paused_at}/{row.instance.id}"


def parse_cursor(text: str) -> Key:
    paused_at, sep, instance_id = text.rpartition("/")
    if not sep or not paused_at or not instance_id:
        raise UsageError(f"--after {text!r} is not a cursor of list-paused",
                         hint="give the `cursor` of the last row of a page "
                              "(procctl list-paused --json prints it), or the whole "
                              "`--after` that the table's last line suggests")
    return paused_at, instance_id


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
        "cursor": cursor(row),
    }


class PausedReader:
    """Reads pages of paused instances from the home's store, read-only. When an agent
    opened the file while it was read without its WAL files (store/reading.py), the
    page is read again through the agent's; a page already given stays given."""

    def __init__(self, home: HomePaths) -> None:
        self.home = home
        self.store: StoreContract | None = None

    def open(self) -> StoreContract:
        if self.store is None:
            self.store = open_home_store(self.home, read_only=True)
            if self.store.file_schema < SCHEMA_VERSION:
                render.note(older_schema_note(self.store))
        return self.store

    def _again(self) -> bool:
        """Was the file opened by a writer since? Then close it, to read again."""
        if self.store is None or not self.store.changed_since_open():
            return False
        self.close()
        return True

    def page(self, process: str | None, before: Key | None, limit: int) -> list[PausedRow]:
        while True:
            try:
                rows = self.open().list_paused(process_name=process, limit=limit,
                                                before=before)
            except StoreError:
                if self._again():
                    continue
                raise
            if not self._again():
                return rows

    def count(self, process: str | None) -> int:
        return self.open().count_paused_upto(COUNT_CAP + 1, process_name=process)

    def rows(self, process: str | None, before: Key | None, limit: int) -> Iterator[PausedRow]:
        """Up to `limit` rows (negative: all) after `before`, a page at a time."""
        left = limit
        while left != 0:
            size = PAGE if left < 0 else min(PAGE, left)
            rows = self.page(process, before, size)
            yield from rows
            if len(rows) < size:
                return
            before = (str(rows[-1].instance.paused_at), rows[-1].instance.id)
            left = left - len(rows) if left > 0 else left

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None


def list_paused_command(
    ctx: typer.Context,
    process: Annotated[str | None, typer.Option("--process", help="Only this process.")] = None,
    limit: Annotated[int | None, typer.Option(
        "--limit", help=f"At most this many (default: {TABLE_ROWS} in a table, all with "
                        "--json).")] = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="CURSOR", help="Start after this row: the `cursor` of the last "
        "row of the page before (the table's last line says it).")] = None,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column, whole, however wide the terminal; with what each "
        "instance expects and a ready-to-paste resume line.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print JSON for scripts: an array written as it is read.")] = False,
) -> None:
    """List paused instances, newest first: correlation ID, expiry, next scheduled resume."""
    options = global_options(ctx)
    before = None if after is None else parse_cursor(after)
    if limit is None:
        limit = -1 if as_json else TABLE_ROWS
    stored = has_store(options.home)
    reader = PausedReader(options.home)
    try:
        if as_json:
            _stream_json(reader.rows(process, before, limit) if stored else iter(()))
            note = no_home_note(options.home)
            if note is not None:
                render.note(note)
            return
        rows: list[PausedRow] = []
        if stored and limit != 0:
            rows = reader.page(process, before, max(limit, 0) + 1 if limit > 0 else -1)
        more = limit > 0 and len(rows) > limit
        rows = rows[:limit] if limit > 0 else rows
        total = reader.count(process) if more and before is None else None
        expected = expectations(reader.open(), rows) if wide and rows else {}
    finally:
        reader.close()
    _table(rows, options.home, process, more=more, total=total, limit=limit,
           expected=expected)


def _stream_json(rows: Iterator[PausedRow]) -> None:
    """A JSON array, one row per line, flushed a page at a time."""
    out = sys.stdout
    out.write("[")
    count = 0
    for count, row in enumerate(rows, 1):
        out.write(("\n  " if count == 1 else ",\n  ") + json.dumps(_row(row),
                                                                  ensure_ascii=False))
        if count % PAGE == 0:
            out.flush()
    out.write("\n]\n" if count else "]\n")
    out.flush()


#: the table's columns; a cell gives the same forms (the full one first)
COLUMNS = (
    plain.Column(("CORRELATION ID",)), plain.Column(("INSTANCE",)), plain.Column(("PROCESS",)),
    plain.Column(("CHECKPOINT",)), plain.Column(("PAUSED SINCE", "PAUSED")),
    plain.Column(("EXPIRES", "EXPIRES")), plain.Column(("NEXT RESUME", "NEXT RESUME")),
    plain.Column(("ITER",)), plain.Column(("SIZE",)))
#: --wide only: what a signal must carry, and the command that sends one
WIDE_COLUMNS = (plain.Column(("EXPECTS",)), plain.Column(("RESUME WITH",)))
#: the least useful first; the correlation ID and the instance ID are never touched
SHRINK = (("drop-empty", "NEXT RESUME"), ("drop", "SIZE"), ("drop", "ITER"),
          ("short", "EXPIRES"), ("short", "PAUSED SINCE"), ("short", "NEXT RESUME"),
          ("drop", "CHECKPOINT"), ("drop", "NEXT RESUME"), ("drop", "PROCESS"),
          ("drop", "PAUSED SINCE"), ("drop", "EXPIRES"))


def expectations(store: StoreContract, rows: list[PausedRow]) -> dict[str, tuple[str, str]]:
    """For each row's instance: what its signal must carry (its checkpoint's expected
    fields, cli/payload_hints.py) and a ready-to-paste `procctl resume` line; for a
    parent paused at a call, the child it waits for. Read from the definitions the
    instances run (each parsed once)."""
    from procctl.agent.calls import called_child
    from procctl.cli import payload_hints

    definitions: dict[str, Any] = {}
    for sha in {row.instance.definition_sha256 for row in rows}:
        try:
            definitions[sha] = payload_hints.pinned_definition(store, sha)
        except (DefinitionError, NotFound):  # not readable by this procctl: say so
            definitions[sha] = None
    shown = {}
    for row in rows:
        correlation_id = row.checkpoint.correlation_id
        child = called_child(correlation_id)
        definition = definitions[row.instance.definition_sha256]
        if child is not None:
            shown[row.instance.id] = ("-", f"waits for child instance {child}")
        elif definition is None:
            shown[row.instance.id] = ("?", resume_command(correlation_id))
        else:
            fields = payload_hints.expected_fields(definition, row.checkpoint.step_id)
            shown[row.instance.id] = (payload_hints.fields_text(fields),
                                      payload_hints.resume_line(correlation_id, fields))
    return shown


def _table(rows: list[PausedRow], home: HomePaths, process: str | None, *, more: bool,
           total: int | None, limit: int, expected: dict[str, tuple[str, str]]) -> None:
    """The table (with EXPECTS and RESUME WITH, from `expected`, for --wide) and its
    notes."""
    wide = bool(expected)
    if not rows:
        render.print_line(nothing_text(
            "paused instances", home, f"process {process}" if process else ""))
        return
    cells: list[list[plain.Cell]] = []
    for row in rows:
        shown = _row(row)
        cell: list[plain.Cell] = [
            render.neutralise(shown["correlation_id"]), shown["instance_id"],
            render.neutralise(shown["process"]), render.neutralise(shown["checkpoint"]),
            (render.short_time(shown["paused_at"]), render.compact_time(shown["paused_at"])),
            (render.until(shown["expires_at"]), render.from_now(shown["expires_at"])),
            (render.until(shown["resume_at"]), render.from_now(shown["resume_at"])),
            str(shown["iteration"]), f"{shown['bytes']} B"]
        if wide:
            cell.extend(render.neutralise(text) for text in expected[row.instance.id])
        cells.append(cell)
    render.print_table([*COLUMNS, *WIDE_COLUMNS] if wide else COLUMNS, cells, shrink=SHRINK,
                       wide=wide)
    if more:
        counted = (f"{len(rows)} more" if total is None
                   else f"the newest {len(rows)} of {total:,}" if total <= COUNT_CAP
                   else f"the newest {len(rows)} of more than {COUNT_CAP:,}")
        filters = f" --process {shlex.quote(process)}" if process else ""
        render.note(f"Showing {counted}; next page: procctl list-paused"
                    f"{filters} --limit {limit} --after {shlex.quote(cursor(rows[-1]))}")
    if wide:
        render.note(f"Or drop a signal file into {signals_directory(home)}: "
                    '{"correlation_id": ID, "payload": {...}} as NAME.tmp, then rename it '
                    "NAME.json")
    else:
        render.note("Resume one with: procctl resume --correlation-id ID [--data key=value]")
        render.note("What each expects: procctl list-paused --wide")


def signals_directory(home: HomePaths) -> Path:
    """The real path of the home's signals directory (its `signals_dir` setting,
    links resolved), where signal files are dropped."""
    from procctl.agent.config import load_config

    try:
        setting = str(load_config(home.config)["signals_dir"])
    except UsageError:
        setting = "signals"
    return home.signals_dir(setting).resolve()
