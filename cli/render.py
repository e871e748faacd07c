"""Rich output: tables, progress lines, errors. No decisions are made here.

rich is imported when something is printed through it: `console` and `err_console` are
made on first use. Tables and `Name  value` lines are written without rich, fitted to
the terminal (cli/plain.py), and so are one-line messages where procctl can write the
very bytes rich would: importing rich and laying out a table with it takes longer than
the rest of `procctl list` (bench/cli_startup.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from procctl.agent.durations import format_duration
from procctl.cli import plain
from procctl.cli.plain import PIPED_WIDTH
from procctl.store.records import Status

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

    from procctl.agent.errors import Problem

    console: Console
    err_console: Console

def _console(name: str) -> Console:
    """The console called `name` ("console": stdout, "err_console": stderr), made on
    first use."""
    made: Console | None = globals().get(name)
    if made is None:
        from rich.console import Console

        # Piped output is not cut to 80 columns: tables stay one line per row for grep
        # and less.
        made = (Console(highlight=False, width=None if sys.stdout.isatty() else PIPED_WIDTH)
                if name == "console" else Console(stderr=True, highlight=False))
        globals()[name] = made
    return made


def __getattr__(name: str) -> Any:
    """`render.console` (stdout) and `render.err_console` (stderr), made on first use."""
    if name not in ("console", "err_console"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _console(name)


def escape(markup: str) -> str:
    """rich's markup escape (rich.markup.escape)."""
    from rich.markup import escape as rich_escape

    return rich_escape(markup)

#: Characters data must not send to a terminal: C0 and C1 controls (ESC starts colour,
#: cursor and clear sequences; CR and BS rewrite a line; 0x9b is an 8-bit CSI), DEL, the
#: bidirectional overrides that reorder what is read, and the Unicode line separators.
_UNSAFE_CODES = (*range(0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F,
                 *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029)
_NAMED = {0x09: "\\t", 0x0A: "\\n", 0x0D: "\\r"}
_VISIBLE = {code: _NAMED.get(code, f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
            for code in _UNSAFE_CODES}
_VISIBLE_BUT_NEWLINES = {code: text for code, text in _VISIBLE.items() if code != 0x0A}

STATUS_STYLES: dict[str, str] = {
    Status.RUNNING: "cyan",
    Status.PAUSED: "yellow",
    Status.COMPLETED: "green",
    Status.FAILED: "red",
    Status.CANCELLED: "magenta",
}


def neutralise(text: str, *, keep_newlines: bool = False) -> str:
    """`text` with every control character shown as a visible escape (ESC as `\\x1b`, CR
    as `\\r`), so data from outside cannot recolour, clear or rewrite the terminal.
    `keep_newlines` keeps line feeds, for multi-line layout procctl made itself (JSON)."""
    return text.translate(_VISIBLE_BUT_NEWLINES if keep_newlines else _VISIBLE)


def safe_text(value: Any, *, keep_newlines: bool = False) -> str:
    """Data (params, payloads, results, errors, log messages, correlation IDs, names) for
    a line of rich markup: control characters neutralised and markup escaped."""
    return escape(neutralise(str(value), keep_newlines=keep_newlines))


def print_json(data: Any) -> None:
    """Plain JSON on stdout, for scripts (no colour, no wrapping)."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def error(message: str, hint: str | None = None) -> None:
    err_console = _console("err_console")
    err_console.print(f"[bold red]Error:[/] {safe_text(message)}", soft_wrap=True)
    if hint:
        err_console.print(f"[bold]Hint:[/] {safe_text(hint)}", soft_wrap=True)


def problem(found: Problem) -> None:
    """A validation finding: `Error:` or `Warning:`, where, what, and its hint."""
    label = "[bold yellow]Warning:[/]" if found.severity == "warning" else "[bold red]Error:[/]"
    err_console = _console("err_console")
    err_console.print(f"{label} {safe_text(found.location())}: {safe_text(found.message)}",
                      soft_wrap=True)
    if found.hint:
        err_console.print(f"[bold]Hint:[/] {safe_text(found.hint)}", soft_wrap=True)


def note(message: str) -> None:
    """A note on stderr, dim on a terminal, never wrapped (as rich's `[dim]` with
    soft_wrap), written without rich: a listing's page note costs no rich import."""
    text = neutralise(message)
    if sys.stderr.isatty() and os.environ.get("TERM", "").lower() not in ("dumb", "unknown"):
        text = f"\x1b[2m{text}\x1b[0m"
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def status_text(status: str) -> str:
    return f"[{STATUS_STYLES.get(status, 'white')}]{status}[/]"


def short_time(iso: str | None) -> str:
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def elapsed(start: str | None, end: str | None) -> str:
    if not start or not end:
        return "-"
    seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
    return f"{seconds:.2f}s" if seconds < 60 else f"{seconds / 60:.1f}m"


def value_text(value: Any) -> str:
    """A value for people (plain text, not markup): a string as it is, anything else as
    indented JSON; control characters neutralised either way."""
    if isinstance(value, str):
        return neutralise(value)
    return neutralise(json.dumps(value, indent=2, ensure_ascii=False, default=str),
                      keep_newlines=True)


def print_table(columns: Sequence[plain.Column], rows: Sequence[Sequence[plain.Cell]], *,
                shrink: Sequence[plain.Shrink] = (),
                styles: Sequence[Sequence[str | None]] | None = None,
                wide: bool = False) -> None:
    """A table on stdout, fitted to the terminal (cli/plain.py `grid`): cells are plain
    text, data in them already neutralised."""
    sys.stdout.write(plain.grid(columns, rows, plain.output_layout(), shrink=shrink,
                                styles=styles, wide=wide))


def print_pairs(pairs: Sequence[plain.Pair]) -> None:
    """`Name  value` lines on stdout (cli/plain.py `key_values`): values are plain
    text, data in them already neutralised."""
    sys.stdout.write(plain.key_values(pairs, plain.output_layout()))


def print_line(text: str) -> None:
    """One line of plain text (not markup: data in it already neutralised) on stdout,
    as `console.print` prints it."""
    layout = plain.stdout_layout()
    line = None if layout is None else plain.line(text, layout)
    if line is None:
        _console("console").print(escape(text))
    else:
        sys.stdout.write(line)


def compact_time(iso: str | None) -> str:
    """A local time in fewer columns than `short_time`: `14:53:40` today, `12-02 14:53`
    this year, `2025-12-02` before; `-` for none."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso).astimezone()
    today = datetime.now(moment.tzinfo).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%m-%d %H:%M" if moment.year == today.year else "%Y-%m-%d")


def from_now(iso: str | None) -> str:
    """`in 6d 23h`, `overdue` for a time past, `-` for none."""
    if not iso:
        return "-"
    moment = datetime.fromisoformat(iso)
    seconds = (moment - datetime.now(moment.tzinfo)).total_seconds()
    return "overdue" if seconds < 0 else f"in {format_duration(seconds)}"


def until(iso: str | None) -> str:
    """`2026-12-01 10:00:00 (in 3d 2h)` or `-`."""
    if not iso:
        return "-"
    return f"{short_time(iso)} ({from_now(iso)})"


def key_value_table(pairs: list[tuple[str, str]]) -> Table:
    from rich.table import Table

    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in pairs:
        table.add_row(key, value)
    return table


def step_line(event: dict[str, Any]) -> str | None:
    """One progress line for an event of `run --wait`, or None for events not shown."""
    kind = event["kind"]
    step = safe_text(event.get("step_id"))
    data = event.get("data") or {}
    if kind == "step_finished":
        return f"  [green]✓[/] {step}{_loop_text(data)} [dim]{data.get('duration', 0):.2f}s[/]"
    if kind == "step_failed":
        return f"  [red]✗[/] {step}{_loop_text(data)}: {safe_text(data.get('message'))}"
    if kind == "step_retry":
        return (f"  [yellow]↻[/] {step}: attempt {safe_text(data.get('attempt'))} failed "
                f"({safe_text(data.get('message'))}); retrying")
    if kind == "log":
        return f"    [blue]│[/] {safe_text(data.get('message'))}"
    if kind == "checkpoint_saved":
        stored = ", ".join(data.get("variables") or []) or "no variables"
        return (f"  [magenta]◆[/] {step}: checkpoint saved as "
                f"{safe_text(data.get('correlation_id'))} [dim]({safe_text(stored)}; "
                f"{safe_text(data.get('bytes'))} bytes)[/]")
    if kind == "instance_resumed":
        return (f"  [magenta]▶[/] {step}: resumed by {safe_text(data.get('resumed_by'))} "
                f"[dim](iteration {safe_text(data.get('iteration'))})[/]")
    if kind == "instance_paused":
        return f"  [yellow]⏸[/] {step}: paused"
    if kind == "child_started":
        return (f"  [cyan]↳[/] {step}: child instance {safe_text(data.get('instance_id'))} "
                f"({safe_text(data.get('process'))})")
    if kind == "step_cancelled":
        return f"  [red]■[/] {step}: stopped (cancelled by {safe_text(data.get('by'))})"
    if kind == "scope_cancelled":
        return f"  [yellow]⤷[/] {step}: cancelled; its finally runs"
    if kind == "scope_caught":
        error = data.get("error") or {}
        return f"  [yellow]⤷[/] {step}: caught {safe_text(error.get('message'))}"
    return None


def _loop_text(data: dict[str, Any]) -> str:
    """What a step event in a loop says after the step's id: ` (iteration 2)` in a
    loop's second iteration (`2.1`: the first of a loop inside it); "" outside."""
    loop = data.get("loop")
    if not isinstance(loop, list) or not loop:
        return ""
    return f" [dim](iteration {safe_text('.'.join(str(number) for number in loop))})[/]"


def waiting_text(child: dict[str, Any]) -> str:
    """A parent paused at a call: which instance it waits for, and how that one goes on.
    Plain text (not markup), with control characters in names and IDs neutralised."""
    who = f"child instance {child['instance_id']} ({child['process']})"
    if len(child["chain"]) > 1:
        who += f", through {len(child['chain']) - 1} more call(s)"
    if child.get("resume_command"):
        return neutralise(f"{who}, paused at correlation ID {child['correlation_id']} (resume "
                          f"it with: {child['resume_command']}); this instance goes on when "
                          "the child ends")
    return neutralise(f"{who}, which is {child['status']}; this instance goes on when the "
                      "child ends")


def no_home(home: Path) -> str:
    """A read command's note when its home does not exist (a mistyped --home?)."""
    return f"No procctl home at {home} (nothing has run there)."


def nothing_in_home(what: str, home: Path, filters: str = "", *, exists: bool = True) -> str:
    """An empty listing's line, naming the home it looked in (and the filters), as
    markup."""
    return escape(nothing_in_home_text(what, home, filters, exists=exists))


def nothing_in_home_text(what: str, home: Path, filters: str = "", *,
                         exists: bool = True) -> str:
    """`nothing_in_home` as plain text (control characters neutralised), for
    `print_line`."""
    if not exists:
        return neutralise(no_home(home))
    where = f" ({filters})" if filters else ""
    return neutralise(f"No {what} in home {home}{where}.")
