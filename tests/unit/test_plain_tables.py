"""cli/plain.py's tables and `Name  value` lines, over generated tables and widths: an
ID is never cut or broken, a table fits its width whenever its ID columns do, columns
give way in the order the table names, free text is cut only on a terminal, `wide`
keeps everything, no line ends in spaces; and how --since and --until read times."""

from __future__ import annotations

import io
import random
import re
from datetime import UTC, datetime, timedelta

import pytest
import typer

from procctl.cli import plain
from procctl.cli.commands.listing import parse_when
from procctl.store.clock import to_stamp

TERMINAL = plain.Layout(80, styles=False, colours=False, terminal=True)
PIPE = plain.Layout(160, styles=False, colours=False, terminal=False)
CODES = re.compile(r"\x1b\[[0-9;]*m")

COLUMNS = (plain.Column(("ID",)), plain.Column(("NAME",)), plain.Column(("WHEN", "WHEN")),
           plain.Column(("SIZE",)), plain.Column(("NOTE",), free=True, least=10))
SHRINK = (("drop", "SIZE"), ("short", "WHEN"), ("drop", "NAME"), ("drop", "NOTE"))


def random_rows(rng: random.Random, count: int) -> list[list[plain.Cell]]:
    words = ("alpha", "beta", "宽字符", "a-long-process-name", "x", "ünï", "")
    rows: list[list[plain.Cell]] = []
    for _ in range(count):
        ident = "".join(rng.choice("0123456789abcdef-") for _ in range(rng.randrange(4, 40)))
        note = " ".join(rng.choice(words) for _ in range(rng.randrange(0, 20)))
        rows.append([ident, rng.choice(words), ("2026-12-02 14:53:40", "14:53:40"),
                     str(rng.randrange(10**6)), note])
    return rows


def visible(text: str) -> list[str]:
    return CODES.sub("", text).splitlines()


def test_generated_tables_keep_ids_whole_and_fit() -> None:
    rng = random.Random(13)
    for _ in range(300):
        rows = random_rows(rng, rng.randrange(1, 8))
        width = rng.choice((20, 40, 60, 80, 100, 160))
        layout = plain.Layout(width, styles=rng.random() < 0.5, colours=True,
                              terminal=rng.random() < 0.7)
        text = plain.grid(COLUMNS, rows, layout, shrink=SHRINK)
        lines = visible(text)
        assert len(lines) == len(rows) + 1
        assert not any(line.endswith(" ") for line in lines), text
        ids_width = max(len("ID"), *(len(str(row[0])) for row in rows))
        for line, row in zip(lines[1:], rows, strict=True):
            assert line.startswith(f"{row[0]}  ") or line == row[0], (line, row)
        if layout.terminal and ids_width + 2 + 8 <= width:
            # only the IDs and WHEN are kept whatever the width
            assert all(plain.cell_width(line) <= width for line in lines), (width, text)


def test_columns_give_way_in_the_order_given() -> None:
    rows: list[list[plain.Cell]] = [["3f2a9c1b2d4e", "order-flow",
                                     ("2026-12-02 14:53:40", "14:53:40"), "545 B",
                                     "step decide: the payload has no field approved"]]
    headers = []
    for width in (160, 70, 60, 50, 40, 30):
        layout = plain.Layout(width, styles=False, colours=False, terminal=True)
        header, line = plain.grid(COLUMNS, rows, layout, shrink=SHRINK).splitlines()
        headers.append(header.split())
        assert line.startswith("3f2a9c1b2d4e  ")
    assert headers == [["ID", "NAME", "WHEN", "SIZE", "NOTE"],
                       ["ID", "NAME", "WHEN", "SIZE", "NOTE"],
                       ["ID", "NAME", "WHEN", "NOTE"],
                       ["ID", "NAME", "WHEN", "NOTE"],
                       ["ID", "WHEN", "NOTE"],
                       ["ID", "WHEN"]]  # 30: no room for the note's least 10
    # at 40 the time is short and the note cut at the end of a word
    at_40 = plain.grid(COLUMNS, rows, plain.Layout(40, False, False), shrink=SHRINK)
    assert at_40.splitlines()[1] == "3f2a9c1b2d4e  14:53:40  step decide:\u2026"


def test_wide_and_piped_keep_every_column_and_all_the_text() -> None:
    note = "a note " * 40
    rows: list[list[plain.Cell]] = [["id-1", "name", ("2026-12-02 14:53:40", "14:53:40"),
                                     "1", note.strip()]]
    for layout, wide in ((TERMINAL, True), (PIPE, False)):
        text = plain.grid(COLUMNS, rows, layout, shrink=SHRINK, wide=wide)
        assert text.splitlines()[1].endswith(note.strip())
        assert "2026-12-02 14:53:40" in text
    cut = plain.grid(COLUMNS, rows, TERMINAL, shrink=SHRINK).splitlines()[1]
    assert 70 < len(cut) <= 80 and cut.endswith(" a\u2026")


def test_lines_carry_no_padding_and_styles_only_where_asked() -> None:
    rows: list[list[plain.Cell]] = [["a", "long name", "t", "", ""], ["bb", "n", "t", "", ""]]
    columns = COLUMNS[:4]
    text = plain.grid(columns, [row[:4] for row in rows], PIPE)
    assert text == "ID  NAME       WHEN  SIZE\na   long name  t\nbb  n          t\n"
    styled = plain.grid(columns, [row[:4] for row in rows],
                        plain.Layout(80, styles=True, colours=True),
                        styles=[[None, "red", None, None], [None, None, None, None]])
    assert styled.splitlines()[0] == "\x1b[1mID  NAME       WHEN  SIZE\x1b[0m"
    assert styled.splitlines()[1] == "a   \x1b[31mlong name\x1b[0m  t"
    no_colour = plain.grid(columns, [row[:4] for row in rows],
                           plain.Layout(80, styles=True, colours=False),
                           styles=[[None, "red", None, None], [None, None, None, None]])
    assert "\x1b[31m" not in no_colour and "\x1b[1m" in no_colour


def test_wide_characters_take_two_columns() -> None:
    assert plain.cell_width("宽字符") == 6
    assert plain.cell_width("e\u0301") == 1
    text = plain.grid(COLUMNS[:2], [["宽字", "x"], ["ab", "y"]], PIPE)
    assert text.splitlines() == ["ID    NAME", "宽字  x", "ab    y"]
    assert plain.cut("宽字符宽字符", 5) == "宽字\u2026"


def test_key_values_wrap_at_spaces_and_never_a_command() -> None:
    command = "procctl resume --correlation-id " + "c" * 50 + " --data approved=true"
    pairs = [plain.Pair("Error", "word " * 30, "red"),
             plain.Pair("Resume", command, wrap=False),
             plain.Pair("Params", '{\n  "order": "' + "o" * 90 + '"\n}')]
    lines = plain.key_values(pairs, TERMINAL).splitlines()
    errors = lines[:lines.index("Resume  " + command)]
    assert len(errors) > 1 and all(len(line) <= 80 for line in errors)
    assert all(line.startswith("        word") for line in errors[1:])
    assert "          " + '"' + "o" * 90 + '"' in lines  # one word: left whole
    assert not any(line.endswith(" ") for line in lines)
    piped = plain.key_values(pairs, PIPE).splitlines()
    assert piped[0] == "Error   " + ("word " * 30).strip()


def test_the_layout_when_rich_cannot_say(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pipe with FORCE_COLOR: codes on a pipe, never cut; a terminal forced off: no
    codes, its width."""
    monkeypatch.setattr("sys.stdout", io.StringIO())
    forced = plain.output_layout({"FORCE_COLOR": "1", "TERM": "xterm"})
    assert forced == plain.Layout(plain.PIPED_WIDTH, styles=True, colours=True,
                                  terminal=False)

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdout", Terminal())
    off = plain.output_layout({"TTY_COMPATIBLE": "0", "COLUMNS": "90", "LINES": "20"})
    assert off == plain.Layout(90, styles=False, colours=False, terminal=True)
    piped = plain.output_layout({"COLUMNS": "90", "LINES": "20", "TERM": "dumb"})
    assert piped.width == 90 and piped.terminal


def test_since_and_until_read_durations_and_local_times() -> None:
    now = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)
    assert parse_when("2h", "--since", now) == to_stamp(now - timedelta(hours=2))
    assert parse_when("1h30m", "--since", now) == to_stamp(now - timedelta(minutes=90))
    assert parse_when("2026-12-01T10:00:00+01:00", "--until") == \
        "2026-12-01T09:00:00.000000+00:00"
    local = datetime(2026, 12, 1, 10, 0).astimezone()
    assert parse_when("2026-12-01 10:00", "--until") == to_stamp(local)
    for bad in ("yesterday", "2h ago", "12"):
        with pytest.raises(typer.BadParameter, match="neither a duration"):
            parse_when(bad, "--since", now)


def test_a_command_too_wide_beside_its_name_goes_below_it_whole() -> None:
    command = "procctl resume --correlation-id approval-C-3003 --data approved=VALUE"
    pairs = [plain.Pair("Correlation ID", "approval-C-3003"),
             plain.Pair("Resume", command, wrap=False),
             plain.Pair("or drop", "a document\n/a/path/" + "p" * 60, wrap=False)]
    lines = plain.key_values(pairs, TERMINAL).splitlines()
    assert lines == ["Correlation ID  approval-C-3003", "Resume", "  " + command,
                     "or drop", "  a document", "  /a/path/" + "p" * 60]
    # piped, or where it fits beside its name: beside it
    assert plain.key_values(pairs, PIPE).splitlines()[1] == "Resume          " + command


def test_a_cut_keeps_whole_words_unless_that_keeps_too_little() -> None:
    assert plain.cut("sub: child instance 8fe3ca22bf9f failed", 28) == "sub: child instance\u2026"
    text = 'decide: in "results[\'wait-for-answer\'].payload.approved": no'
    assert plain.cut(text, 23) == 'decide: in "results[\'w\u2026'
