"""Output that is no terminal is written without rich where rich would print the same
bytes (cli/render.py: print_instances, print_line): checked against rich itself, over
generated rows with plain text, markup, emoji codes, wide characters, long cells.
"""

from __future__ import annotations

import io
import itertools
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from procctl.cli import render

STATUSES = ("running", "paused", "completed", "failed")
#: text rich prints as it is, and text it does not (markup, escapes, emoji codes, wide
#: or non-ASCII characters, control characters)
PLAIN = ("order-flow", "a b  c", " padded ", "", "x" * 70, "12:34:56", "ok:", "version 1.2",
         "a:b", "v-1_2.3")
OTHER = ("ünïcode", "宽字符", "[bold]x[/]", "back\\slash", "a:smile:b", "n:100:", "tab\there",
         "esc\x1b[31mred", "[", ":+1:")
TEXTS = PLAIN + OTHER


def rich_output(print_it: Any) -> str:
    """What rich's own stdout console prints on no terminal (PIPED_WIDTH wide)."""
    console = Console(file=io.StringIO(), highlight=False, width=render.PIPED_WIDTH)
    print_it(console)
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def procctl_output(monkeypatch: pytest.MonkeyPatch, print_it: Any) -> str:
    """What procctl writes to a stdout that is no terminal."""
    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    out = io.StringIO()
    with monkeypatch.context() as patch:
        patch.setattr("sys.stdout", out)
        patch.delattr(render, "console", raising=False)  # made again, on this stdout
        print_it()
    return out.getvalue()


def rows_for(rng: random.Random, count: int, texts: tuple[str, ...]) -> list[dict[str, Any]]:
    start = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    rows = []
    for number in range(count):
        started = start + timedelta(seconds=rng.randrange(10**6))
        ended = (started + timedelta(seconds=rng.random() * rng.choice((1, 100, 10**4)))
                 if rng.random() < 0.6 else None)
        rows.append({
            "instance_id": rng.choice((f"{number:04x}" + "0" * rng.randrange(40), *texts)),
            "process": rng.choice(texts), "status": rng.choice(STATUSES),
            "started_at": started.isoformat(), "ended_at": ended and ended.isoformat(),
        })
    return rows


def test_listing_without_rich_prints_what_rich_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(11)
    plain_cases = 0
    for count in itertools.chain((1, 2, 3, 50), (rng.randrange(1, 20) for _ in range(200))):
        rows = rows_for(rng, count, rng.choice((PLAIN, TEXTS)))
        expected = rich_output(lambda console, rows=rows: console.print(
            render.instances_table(rows)))
        written = procctl_output(monkeypatch, lambda rows=rows: render.print_instances(rows))
        assert written == expected, rows
        cells = [[row["instance_id"], row["process"], row["status"], "t", "d"] for row in rows]
        plain_cases += render.plain_table(render.INSTANCE_COLUMNS, cells) is not None
    assert plain_cases > 20  # the plain path was taken, not only rich's


def test_typical_instances_are_written_without_rich() -> None:
    rows = [{"instance_id": "3f2a9c", "process": "order-flow", "status": "completed",
             "started_at": "2026-12-01T09:30:00+00:00", "ended_at": "2026-12-01T09:30:02+00:00"}]
    cells = [["3f2a9c", "order-flow", "completed", render.short_time(rows[0]["started_at"]),
              "2.00s"]]
    assert render.plain_table(render.INSTANCE_COLUMNS, cells) is not None


def test_a_line_without_rich_prints_what_rich_prints(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(12)
    lines = [*TEXTS, "No instances in home /tmp/x (status failed).",
             *("w" * size for size in (159, 160, 161)),
             *(" ".join(rng.choice(TEXTS) for _ in range(rng.randrange(1, 30)))
               for _ in range(100))]
    for line in lines:
        text = render.neutralise(line)
        expected = rich_output(lambda console, text=text: console.print(render.escape(text)))
        assert procctl_output(monkeypatch, lambda text=text: render.print_line(text)) == \
            expected, text


@pytest.mark.parametrize("tty_compatible", [None, "", "0", "1", "yes"])
@pytest.mark.parametrize("force_color", [None, "", "1"])
def test_plain_only_where_rich_sees_no_terminal(monkeypatch: pytest.MonkeyPatch,
                                                tty_compatible: str | None,
                                                force_color: str | None) -> None:
    for name, value in (("TTY_COMPATIBLE", tty_compatible), ("FORCE_COLOR", force_color)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    assert render.plain_stdout() == (not Console(file=out).is_terminal)


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
        assert set(row) == {"instance_id", "process", "status", "started_at", "ended_at"}
        summary = instance_summary(record)
        assert row == {key: summary[key] for key in row}, record
