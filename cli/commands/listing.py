"""`procctl list`: instances, newest first, from the store, a page at a time.

The table fits the terminal (cli/plain.py): at 80 columns STARTED is shortened, then
PARENT and DURATION dropped, before an instance ID would be touched. A call's child is
marked (`\u21b3` before its process; PARENT names its parent), and NOTE says why a
failed instance failed. Pages go by key (`--after ID`): the next page starts after that instance, in
the same order (started_at, then ID, descending).
"""

from __future__ import annotations

import json
import re
import shlex
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from procctl.cli import plain, render
from procctl.cli.options import global_options, has_store, no_home_note, nothing_text, read_store
from procctl.store.records import InstanceRecord, Status

if TYPE_CHECKING:
    from procctl.store import StoreContract

STATUSES = tuple(Status)
#: a duration back from now, as --since and --until take it: 30m, 2h, 7d, 1h30m
_AGO = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+")

COLUMNS = (plain.Column(("INSTANCE",)), plain.Column(("PROCESS",)),
           plain.Column(("STATUS",)), plain.Column(("STARTED", "STARTED")),
           plain.Column(("DURATION",)))
#: shown when a row is a call's child (its PROCESS is marked CHILD_MARK too)
PARENT = plain.Column(("PARENT",))
#: shown when a row has an error: why it failed, cut to the room left on a terminal
NOTE = plain.Column(("NOTE",), free=True, least=20)
SHRINK = (("short", "STARTED"), ("drop", "PARENT"), ("drop", "DURATION"), ("drop", "NOTE"))
#: before a child instance's process name
CHILD_MARK = "\u21b3 "


def table_row(record: InstanceRecord) -> dict[str, Any]:
    """The fields of an instance's summary (agent/summary.py) that the table shows: the
    table does without decoding every instance's params and result (and without the
    value codec's import), which only --json prints."""
    return {"instance_id": record.id, "process": record.process_name,
            "status": str(record.status), "started_at": record.started_at,
            "ended_at": record.ended_at, "parent_id": record.parent_id,
            "error": json.loads(record.error_json) if record.error_json else None}


def note(row: dict[str, Any]) -> str:
    """Why the instance failed: its error, on one line (empty for one with none)."""
    error = row.get("error")
    if not error or row["status"] == Status.COMPLETED:
        return ""
    message = str(error.get("message", error) if isinstance(error, dict) else error)
    step = error.get("step_id") if isinstance(error, dict) else None
    return render.neutralise(f"{step}: {message}" if step else message)


def parse_when(text: str, option: str, now: datetime | None = None) -> str:
    """A time as --since and --until take it: a duration back from now (`2h`, `7d`,
    `1h30m`) or a date and time (`2026-12-01`, `2026-12-01 14:30`, ISO 8601; local
    time unless it names its zone); as the store writes times (store/clock.py)."""
    from procctl.agent.durations import parse_duration
    from procctl.store.clock import to_stamp

    value = text.strip()
    current = now or datetime.now().astimezone()
    if _AGO.fullmatch(value):
        return to_stamp(current - timedelta(seconds=parse_duration(value)))
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{text!r} is neither a duration back from now (30m, 2h, 7d) nor a time "
            "(2026-12-01, 2026-12-01 14:30, local unless it names its zone)",
            param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # local time, as the tables print it
    return to_stamp(moment)


def list_command(
    ctx: typer.Context,
    status: Annotated[str | None, typer.Option(
        "--status", help=f"Only instances with this status ({', '.join(STATUSES)}).")] = None,
    process: Annotated[str | None, typer.Option("--process", help="Only this process.")] = None,
    since: Annotated[str | None, typer.Option(
        "--since", metavar="WHEN", help="Only instances started at or after WHEN: a duration "
        "back from now (2h, 7d) or a time (2026-12-01 14:30, local).")] = None,
    until: Annotated[str | None, typer.Option(
        "--until", metavar="WHEN", help="Only instances started before WHEN (as --since).")
    ] = None,
    after: Annotated[str | None, typer.Option(
        "--after", metavar="ID", help="The next page: start after this instance (the last "
        "row of the page before; the note under the table gives the command).")] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.")] = 50,
    wide: Annotated[bool, typer.Option(
        "--wide", help="Every column, whole, however wide the terminal.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """List instances, newest first: status, start, duration, parent, why it failed."""
    if status is not None and status not in STATUSES:
        raise typer.BadParameter(f"{status!r} is not one of {', '.join(STATUSES)}",
                                 param_hint="--status")
    lower = None if since is None else parse_when(since, "--since")
    upper = None if until is None else parse_when(until, "--until")
    options = global_options(ctx)
    home = options.home
    records: list[InstanceRecord] = []
    if has_store(home):
        def read(store: StoreContract) -> list[InstanceRecord]:
            before = None
            if after is not None:
                last = store.get_instance(after)
                before = (last.started_at, last.id)
            return store.instances_page(
                status=None if status is None else Status(status), process_name=process,
                since=lower, until=upper, before=before, limit=max(limit, 0) + 1)

        records = read_store(home, read)
    more = len(records) > limit
    records = records[:max(limit, 0)]
    if as_json:
        from procctl.agent.summary import instance_summary

        render.print_json([instance_summary(record) for record in records])
        note_text = no_home_note(home)
        if note_text is not None:
            render.note(note_text)
        return
    filters = [("--status", status), ("--process", process), ("--since", since),
               ("--until", until)]
    if not records:
        said = ", ".join(f"{name[2:]} {value}" for name, value in filters if value)
        if after:
            said = ", ".join(filter(None, [said, f"after {after}"]))
        render.print_line(nothing_text("instances", home, said))
        return
    print_instances([table_row(record) for record in records], wide=wide)
    if more:
        given = "".join(f" {name} {shlex.quote(value)}" for name, value in filters if value)
        render.note(f"Showing {len(records)}; next page: procctl list{given} "
                    f"--limit {limit} --after {records[-1].id}")


def print_instances(rows: list[dict[str, Any]], *, wide: bool = False) -> None:
    """The instances as a table on stdout, fitted to the terminal (cli/plain.py); the
    PARENT and NOTE columns only when a row has something to say there."""
    notes = [note(row) for row in rows]
    parents = any(row.get("parent_id") for row in rows)
    columns = [*COLUMNS, *([PARENT] if parents else []), *([NOTE] if any(notes) else [])]
    cells = []
    for row, said in zip(rows, notes, strict=True):
        process = render.neutralise(str(row["process"]))
        cell: list[plain.Cell] = [
            row["instance_id"], CHILD_MARK + process if row.get("parent_id") else process,
            str(row["status"]),
            (render.short_time(row["started_at"]), render.compact_time(row["started_at"])),
            render.elapsed(row["started_at"], row["ended_at"])]
        if parents:
            cell.append(row.get("parent_id") or "-")
        if any(notes):
            cell.append(said)
        cells.append(cell)
    styles = [[None, None, render.STATUS_STYLES.get(row["status"], "white")]
              + [None] * (len(columns) - 3) for row in rows]
    render.print_table(columns, cells, shrink=SHRINK, styles=styles, wide=wide)
