"""One-line messages are written without rich where procctl can write the very bytes
rich would (cli/plain.py, cli/render.py): checked against rich itself, printing through
procctl's own console, over generated lines (plain text, markup, emoji codes, wide
characters, long lines) and environments (a pipe, terminals of every kind rich tells
apart: dumb, NO_COLOR, COLUMNS and LINES, the terminal's size, FORCE_COLOR,
TTY_COMPATIBLE). Tables are procctl's own (tests/unit/test_plain_tables.py).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from procctl.cli import plain, render

#: text rich prints as it is, and text it does not (markup, escapes, emoji codes, wide
#: or non-ASCII characters, control characters)
PLAIN = ("order-flow", "a b  c", " padded ", "", "x" * 70, "12:34:56", "ok:", "version 1.2",
         "a:b", "v-1_2.3")
OTHER = ("ünïcode", "宽字符", "[bold]x[/]", "back\\slash", "a:smile:b", "n:100:", "tab\there",
         "esc\x1b[31mred", "[", ":+1:")
TEXTS = PLAIN + OTHER
#: what rich reads from the environment, and values that make it decide differently
ENVIRONMENT = {
    "TERM": (None, "xterm-256color", "xterm-16color", "dumb", "unknown", "kitty"),
    "COLORTERM": (None, "truecolor"),
    "NO_COLOR": (None, "", "1"),
    "COLUMNS": (None, "100", "200", "60", "abc"),
    "LINES": (None, "30"),
    "FORCE_COLOR": (None, None, None, "", "1"),
    "TTY_COMPATIBLE": (None, None, None, "0", "1", "2"),
}


class Terminal(io.StringIO):
    """A stdout that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def in_setting(monkeypatch: pytest.MonkeyPatch, rng: random.Random, print_it: Any) -> tuple[
        str, str, dict[str, str | None]]:
    """Under a random environment and stdout (a pipe or a terminal of a random size):
    what procctl writes with `print_it(procctl)`, and what rich writes with
    `print_it(rich)` through the console procctl would make there."""
    env = {name: rng.choice(values) for name, values in ENVIRONMENT.items()}
    size = rng.choice((None, 0, 80, 150, 220))
    with monkeypatch.context() as patch:
        for name, value in env.items():
            if value is None:
                patch.delenv(name, raising=False)
            else:
                patch.setenv(name, value)

        def terminal_size(descriptor: int = 1) -> os.terminal_size:
            if size is None:
                raise OSError("not a terminal")
            return os.terminal_size((size, 40))

        patch.setattr(os, "get_terminal_size", terminal_size)
        written = []
        for through_rich in (False, True):
            out = Terminal() if size is not None else io.StringIO()
            patch.setattr("sys.stdout", out)
            patch.delattr(render, "console", raising=False)  # made again, here
            print_it(through_rich)
            written.append(out.getvalue())
    return written[0], written[1], {**env, "size": str(size)}


def test_a_line_without_rich_prints_what_rich_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12)
    lines = [*TEXTS, "No instances in home /tmp/x (status failed).",
             *("w" * size for size in (59, 60, 61, 79, 80, 81, 159, 160, 161)),
             *(" ".join(rng.choice(TEXTS) for _ in range(rng.randrange(1, 30)))
               for _ in range(200))]
    for line in lines:
        text = render.neutralise(line)

        def print_it(through_rich: bool, text: str = text) -> None:
            if through_rich:
                render.console.print(render.escape(text))
            else:
                render.print_line(text)

        ours, theirs, setting = in_setting(monkeypatch, rng, print_it)
        assert ours == theirs, (setting, text)


SETTINGS = list(itertools.product(
    (None, "xterm-256color", "dumb"), (None, "1"), (None, "100", "abc"), (None, "30"),
    (None, 0, 150), ((None, None), ("", None), ("1", None), (None, "0"), (None, "1"))))


@pytest.mark.parametrize(("term", "no_color", "columns", "lines", "size", "forced"), SETTINGS)
def test_the_layout_is_richs(monkeypatch: pytest.MonkeyPatch, term: str | None,
                             no_color: str | None, columns: str | None, lines: str | None,
                             size: int | None, forced: tuple[str | None, str | None]) -> None:
    """Where procctl says how rich would write to stdout, rich's own console there says
    the same: its width, whether it writes codes (a colour system), and colours."""
    env = {"TERM": term, "NO_COLOR": no_color, "COLUMNS": columns, "LINES": lines,
           "FORCE_COLOR": forced[0], "TTY_COMPATIBLE": forced[1], "COLORTERM": None}
    for name, value in env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)

    def terminal_size(descriptor: int = 1) -> os.terminal_size:
        if size is None:
            raise OSError("not a terminal")
        return os.terminal_size((size, 40))

    monkeypatch.setattr(os, "get_terminal_size", terminal_size)
    monkeypatch.setattr("sys.stdout", Terminal() if size is not None else io.StringIO())
    monkeypatch.delattr(render, "console", raising=False)
    layout, console = plain.stdout_layout(), render.console
    if layout is None:  # rich told to see a terminal as none, or the reverse
        assert forced != (None, None)
        return
    writes_codes = console.color_system is not None
    assert (layout.width, layout.styles, layout.colours) == (
        console.width, writes_codes, writes_codes and not console.no_color)


def test_the_table_shows_the_summarys_fields(tmp_path: Path) -> None:
    """`procctl list` builds its table rows without the full summary (no params or
    result decoded): the fields it shows are the summary's."""
    from procctl.agent.summary import instance_summary
    from procctl.cli.commands.listing import table_row
    from procctl.store import open_store

    store = open_store(tmp_path / "procctl.db")
    try:
        store.put_definition("b" * 64, "table-row", None, None, "[process]\n")
        for number in range(3):
            store.create_instance(f"row-{number}", "b" * 64, "table-row", None,
                                  json.dumps({"n": [number]}), "{}")
        store.finish_instance("row-1", "completed", result_json=json.dumps({"ok": True}))
        store.finish_instance("row-2", "failed", error_json=json.dumps({"message": "no"}))
        records = store.list_instances(limit=10)
    finally:
        store.close()
    assert len(records) == 3
    for record in records:
        row = table_row(record)
        assert set(row) == {"instance_id", "process", "status", "started_at", "ended_at",
                            "parent_id", "error"}
        summary = instance_summary(record)
        assert row == {key: summary[key] for key in row}, record
