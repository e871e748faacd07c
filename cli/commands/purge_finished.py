"""`procctl purge --finished --older-than D`: remove completed, failed and cancelled
instances that ended more than D ago, with their history, checkpoint and signal rows.

The command works on the store itself, with or without an agent: a page of instances
per transaction (agent/retention.py FinishedPass), each removed only if it still
qualifies when its transaction runs, so an agent goes on between the pages and a retry
racing the purge wins or finds nothing. `--dry-run` only reads (the store opened
read-only). Output follows the pages: the first LISTED instances by name, then a
progress line per page on stderr, then the totals; `--json` streams its object.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

from procctl.agent.durations import parse_duration
from procctl.agent.errors import UsageError
from procctl.agent.paths import HomePaths
from procctl.agent.retention import FinishedPass, cut_before
from procctl.cli import render
from procctl.cli.options import global_options, has_store, open_home_store, read_store
from procctl.store import StoreContract
from procctl.store.retention import FinishedRow, Purged

#: instances named one by one; beyond them, progress lines and a count
LISTED = 100
#: instances per transaction (each a few statements over index ranges)
BATCH = 200
EXAMPLE = "procctl purge --finished --older-than 30d"


class PurgeReport:
    """Prints the purge as its pages come."""

    def __init__(self, *, before: str, older_than: str, dry_run: bool,
                 as_json: bool) -> None:
        self.before, self.dry_run, self.as_json = before, dry_run, as_json
        self.count = 0
        self.totals = Purged()
        if as_json:
            sys.stdout.write(f'{{"dry_run": {json.dumps(dry_run)}, "older_than": '
                             f'{json.dumps(older_than)}, "before": {json.dumps(before)}, '
                             '"purged": [')

    def page(self, rows: list[FinishedRow], purged: Purged | None) -> None:
        gone = set(purged.instance_ids) if purged is not None else None
        for row in rows:
            if gone is not None and row.instance_id not in gone:
                continue  # retried or resumed since it was read: it stays
            self.count += 1
            if self.as_json:
                sys.stdout.write(("\n  " if self.count == 1 else ",\n  ") + json.dumps({
                    "instance_id": row.instance_id, "process": row.process_name,
                    "status": row.status, "ended_at": row.ended_at}, ensure_ascii=False))
            elif self.count <= LISTED:
                render.print_line(
                    f"{self._verb()} {row.instance_id} ({render.neutralise(row.process_name)},"
                    f" {row.status}, ended {render.short_time(row.ended_at)})")
        if purged is not None:
            self.totals = Purged((), self.totals.events + purged.events,
                                 self.totals.checkpoints + purged.checkpoints,
                                 self.totals.signals + purged.signals)
        if self.as_json:
            sys.stdout.flush()
        elif self.count > LISTED and rows:
            render.note(f"... {self.count:,} {'would be purged' if self.dry_run else 'purged'}"
                        " so far")

    def finish(self) -> None:
        removed = None if self.dry_run else self.totals
        if self.as_json:
            sys.stdout.write(f"{chr(10) if self.count else ''}], \"count\": {self.count}, "
                             f"\"events\": {_number(removed, 'events')}, "
                             f"\"checkpoints\": {_number(removed, 'checkpoints')}, "
                             f"\"signals\": {_number(removed, 'signals')}}}\n")
            sys.stdout.flush()
            return
        cut = render.short_time(self.before)
        if not self.count:
            render.print_line(f"No finished instance ended before {cut}: nothing to purge.")
            return
        text = (f"{self._verb()} {_plural(self.count, 'finished instance')} that ended before "
                f"{cut}")
        if removed is not None:
            text += (f", with {_plural(removed.events, 'history event')}, "
                     f"{_plural(removed.checkpoints, 'checkpoint')} and "
                     f"{_plural(removed.signals, 'signal record')}")
        if self.count > LISTED:
            text += f" (the first {LISTED} are listed above)"
        render.print_line(text + ".")

    def _verb(self) -> str:
        return "Would purge" if self.dry_run else "Purged"


def _number(removed: Purged | None, name: str) -> str:
    return "null" if removed is None else str(getattr(removed, name))


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def older_than_seconds(text: str | None) -> float:
    """--older-than as seconds; a usage error naming the option when it is missing or
    not a duration."""
    if text is None:
        raise UsageError("procctl purge needs --older-than: how long ago an instance must "
                         "have ended", hint=f"for example: {EXAMPLE}")
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise UsageError(f"--older-than: {exc}", hint=f"for example: {EXAMPLE}") from None


def purge_command(
    ctx: typer.Context,
    finished: Annotated[bool, typer.Option(
        "--finished", help="Purge completed, failed and cancelled instances.")] = False,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", metavar="DURATION",
        help="Only instances that ended longer ago than this: 30d, 12h, 1w.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would go.")]
    = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Remove finished instances that ended long ago, with their history.

    Completed, failed and cancelled instances that ended more than --older-than ago go,
    with their history events, checkpoint and signal records; running and paused ones
    never do. Works with or without an agent.
    """
    options = global_options(ctx)
    if not finished:
        raise UsageError("say what to purge: procctl purge --finished",
                         hint=f"for example: {EXAMPLE}")
    walk = FinishedPass(cut_before(older_than_seconds(older_than)))
    report = PurgeReport(before=walk.before, older_than=str(older_than), dry_run=dry_run,
                         as_json=as_json)
    if has_store(options.home):
        if dry_run:
            _dry_run(options.home, walk.before, report)
        else:
            _purge(options.home, walk, report)
    report.finish()


def _dry_run(home: HomePaths, before: str, report: PurgeReport) -> None:
    """Read what would go, read-only (read again whole if an agent opened the store
    meanwhile), then print it: every row for --json, else the first LISTED and a count."""
    keep = None if report.as_json else LISTED

    def read(store: StoreContract) -> tuple[list[FinishedRow], int]:
        reading, count = FinishedPass(before), 0
        rows: list[FinishedRow] = []
        while not reading.done:
            page = reading.next_page(store, BATCH)
            count += len(page)
            rows.extend(page if keep is None else page[:max(keep - len(rows), 0)])
        return rows, count

    rows, count = read_store(home, read)
    report.page(rows, None)
    report.count = count


def _purge(home: HomePaths, walk: FinishedPass, report: PurgeReport) -> None:
    store = open_home_store(home, must_exist=True)
    try:
        while not walk.done:
            report.page(*walk.purge_next(store, BATCH))
    finally:
        store.close()
