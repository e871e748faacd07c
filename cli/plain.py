"""procctl's tables and lines for people, written without rich.

Importing rich's console takes a third of what `python -c "import typer, rich"` takes,
and laying out a table of fifty instances with it as much again: more than the rest of
`procctl list` together (bench/cli_startup.py). So procctl writes its tables itself:

- `stdout_layout` says how rich's `Console(highlight=False)` would write to stdout: its
  width, and whether it sends bold and colour codes (a terminal) or none (a pipe, a
  file), decided from the same environment rich reads (TTY_COMPATIBLE, FORCE_COLOR,
  TERM, NO_COLOR, COLUMNS and LINES, the terminal's size); None where procctl cannot
  tell. `output_layout` is the same, with procctl's own answer where that is None.
- `grid` lays out a table to fit the width: an ID or a correlation ID is never broken
  or cut; the least useful columns are shortened or dropped first (each table says in
  what order), and a free-text column (an error, a detail) is cut to the room left on a
  terminal. `wide` keeps every column whole. No line ends in spaces, so piped output
  carries no padding.
- `key_values` lays out `show`'s `Name  value` lines, wrapping values at spaces on a
  terminal, never inside a word, and never a command meant to be pasted.
- `line` writes one line of text as rich would (tests/unit/test_cli_startup_render.py
  compares the two with rich itself).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from typing import NamedTuple

#: the width rich's stdout console gets when stdout is no terminal (cli/render.py)
PIPED_WIDTH = 160
#: SGR codes of the styles procctl's plain output uses (rich's for a standard colour are
#: the same whatever the terminal's colour system)
SGR = {"bold": "1", "red": "31", "green": "32", "yellow": "33", "cyan": "36", "white": "37"}
_RESET = "\x1b[0m"

#: printable ASCII: one character, one column, as rich measures it
_PLAIN_TEXT = re.compile(r"[ -~]*")
#: an `:name:` rich may replace with an emoji (rich's own pattern allows any \S but ':'
#: in a name); a two-digit name, as in a time, names none
_EMOJI_CODE = re.compile(r":(?!\d\d:)[^:\s]+:")


class Layout(NamedTuple):
    """How rich would write to stdout: `width` columns; `styles`: bold and colour codes
    (a terminal that is not dumb); `colours`: colour codes too (no NO_COLOR);
    `terminal`: a terminal (False: a pipe or a file, where text is never cut or
    wrapped). (A NamedTuple: made at start-up, a fifth of a dataclass's cost.)"""

    width: int
    styles: bool
    colours: bool
    terminal: bool = True


def stdout_layout(environ: Mapping[str, str] | None = None) -> Layout | None:
    """Layout of rich's `Console(highlight=False, width=None if a tty else 160)` on
    stdout (see cli/render.py), as rich decides it; None where procctl cannot tell."""
    env = os.environ if environ is None else environ
    if sys.platform == "win32":
        return None
    isatty = sys.stdout.isatty()
    tty_compatible = env.get("TTY_COMPATIBLE", "")
    force_color = env.get("FORCE_COLOR")
    if tty_compatible in ("0", "1"):
        terminal = tty_compatible == "1"
    elif force_color is not None:
        terminal = force_color != ""
    else:
        terminal = isatty
    if not isatty:
        return None if terminal else Layout(PIPED_WIDTH, styles=False, colours=False,
                                            terminal=False)
    if not terminal:
        return None  # a terminal rich is told to treat as none
    dumb = env.get("TERM", "").lower() in ("dumb", "unknown")
    return Layout(_terminal_width(env, dumb), styles=not dumb,
                  colours=not dumb and env.get("NO_COLOR", "") == "")


def _terminal_width(env: Mapping[str, str], dumb: bool) -> int:
    """rich's Console.size width for a terminal: COLUMNS (with LINES, even on a dumb
    terminal), else 80 on a dumb one, else the size of stdin, stdout or stderr."""
    columns, lines = env.get("COLUMNS"), env.get("LINES")
    if columns is not None and columns.isdigit() and lines is not None and lines.isdigit():
        return int(columns)
    if dumb:
        return 80
    width = None
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (AttributeError, ValueError, OSError):
            continue
        break
    if columns is not None and columns.isdigit():
        return int(columns)
    return width or 80


def is_plain(text: str) -> bool:
    """Whether rich prints `text`, given as markup, exactly as it is: printable ASCII
    with no markup tag or escape ('[' or '\\') and no emoji code."""
    return (_PLAIN_TEXT.fullmatch(text) is not None and "[" not in text and "\\" not in text
            and _EMOJI_CODE.search(text) is None)


def _styled(text: str, style: str | None, layout: Layout) -> str | None:
    """`text` as rich writes a segment of it in `style`; None for a style not in SGR."""
    if style is None or not layout.styles:
        return text
    if style not in SGR:
        return None
    if style != "bold" and not layout.colours:
        return text
    return f"\x1b[{SGR[style]}m{text}{_RESET}"


def output_layout(environ: Mapping[str, str] | None = None) -> Layout:
    """How procctl writes its tables to stdout: as rich would (`stdout_layout`), or,
    where procctl cannot tell what rich would do (a terminal forced on for a pipe, or
    off for a terminal), procctl's own answer from the same settings."""
    env = os.environ if environ is None else environ
    found = stdout_layout(env)
    if found is not None:
        return found
    isatty = sys.stdout.isatty()
    dumb = env.get("TERM", "").lower() in ("dumb", "unknown")
    tty_compatible, force_color = env.get("TTY_COMPATIBLE", ""), env.get("FORCE_COLOR")
    if tty_compatible in ("0", "1"):
        styles = tty_compatible == "1"
    elif force_color is not None:
        styles = force_color != ""
    else:
        styles = isatty
    styles = styles and not dumb
    width = _terminal_width(env, dumb) if isatty else PIPED_WIDTH
    return Layout(width, styles=styles, colours=styles and env.get("NO_COLOR", "") == "",
                  terminal=isatty)


def cell_width(text: str) -> int:
    """Columns `text` takes on a terminal: two for a wide (East Asian) character, none
    for a combining mark or a format character, one for any other."""
    if text.isascii():
        return len(text)
    import unicodedata

    return sum(0 if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me",
                                                                                 "Cf")
               else 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
               for char in text)


#: the mark of text cut short
ELLIPSIS = "\u2026"


def cut(text: str, width: int) -> str:
    """`text` in at most `width` columns: cut, with an ellipsis, when it is longer; at
    the end of a word (an ID in the text is not shown in part), unless that keeps less
    than half the room (a long word: its start is shown)."""
    if cell_width(text) <= width:
        return text
    kept, used = [], 0
    for char in text:
        size = cell_width(char)
        if used + size > width - 1:
            break
        kept.append(char)
        used += size
    shown = "".join(kept)
    if text[len(shown)] != " " and " " in shown.strip(" "):
        whole_words = shown[:shown.rstrip(" ").rindex(" ")]
        if 2 * cell_width(whole_words) >= width:  # else a long word: show its start
            shown = whole_words
    return shown.rstrip(" ") + ELLIPSIS


def _paint(text: str, style: str | None, layout: Layout) -> str:
    """`text` in `style` (a key of SGR) where the layout writes styles; text as it is
    otherwise (and for an unknown style or empty text)."""
    if not text:
        return text
    styled = _styled(text, style, layout)
    return text if styled is None else styled


class Column(NamedTuple):
    """A table's column. `headers`: its header in each of its forms, the full one first
    (a cell gives its text in the same forms, or one text for all). `free`: free text
    (an error, a detail; the last column only), cut to the room left on a terminal;
    `least`: the width a free column keeps before other columns are shortened or
    dropped for it."""

    headers: tuple[str, ...]
    free: bool = False
    least: int = 12


#: a cell: its text in each of its column's forms (the full one first), or one text
Cell = str | tuple[str, ...]
#: one way to make a table narrower, tried in order until it fits: ("short", HEADER)
#: the column's next shorter form; ("drop", HEADER) the column; ("drop-empty", HEADER)
#: the column when no cell says anything (each is "" or "-")
Shrink = tuple[str, str]


def grid(columns: Sequence[Column], rows: Sequence[Sequence[Cell]], layout: Layout, *,
         shrink: Sequence[Shrink] = (), styles: Sequence[Sequence[str | None]] | None = None,
         wide: bool = False) -> str:
    """A table for people: a bold header line and a line per row, columns two spaces
    apart, no line ending in spaces. Unless `wide`, it is made narrower to fit
    `layout.width`, by the steps of `shrink` in order, and on a terminal a free column
    is cut to the room left. Cells are plain text (control characters neutralised);
    `styles[r][c]` is the style of row r's cell c (a key of SGR, or None)."""
    names = [column.headers[0] for column in columns]
    level = [0] * len(columns)
    shown = [True] * len(columns)
    measured: dict[tuple[int, int], int] = {}

    def form(options: Cell | str, index: int) -> str:
        if isinstance(options, str):
            return options
        return options[min(level[index], len(options) - 1)]

    def natural(index: int) -> int:
        key = (index, level[index])
        if key not in measured:
            measured[key] = max([cell_width(form(columns[index].headers, index)),
                                 *(cell_width(form(row[index], index)) for row in rows)])
        return measured[key]

    def width(index: int) -> int:
        column = columns[index]
        if not column.free:
            return natural(index)
        return min(natural(index), max(column.least, cell_width(form(column.headers, index))))

    def total() -> int:
        visible = [index for index in range(len(columns)) if shown[index]]
        return sum(width(index) for index in visible) + 2 * (len(visible) - 1)

    if not wide:
        for kind, name in shrink:
            if total() <= layout.width:
                break
            if name not in names:
                continue
            index = names.index(name)
            if kind == "short":
                level[index] += 1
            elif kind == "drop" or all(form(row[index], index) in ("", "-") for row in rows):
                shown[index] = False
    visible = [index for index in range(len(columns)) if shown[index]]
    widths = {index: natural(index) for index in visible}
    last = visible[-1]
    if columns[last].free and layout.terminal and not wide:
        room = layout.width - sum(widths[index] + 2 for index in visible[:-1])
        widths[last] = min(widths[last], max(room, width(last)))

    def assemble(cells: Sequence[str], cell_styles: Sequence[str | None]) -> str:
        parts = []
        for position, (index, text) in enumerate(zip(visible, cells, strict=True)):
            if index == last:
                text = cut(text, widths[index])
                parts.append(_paint(text, cell_styles[position], layout))
            else:
                parts.append(_paint(text, cell_styles[position], layout)
                             + " " * (widths[index] - cell_width(text) + 2))
        return "".join(parts).rstrip(" ")

    header = assemble([form(columns[index].headers, index) for index in visible],
                      [None] * len(visible)).rstrip(" ")
    lines = [_paint(header, "bold", layout)]
    for number, row in enumerate(rows):
        lines.append(assemble([form(row[index], index) for index in visible],
                              [styles[number][index] if styles else None
                               for index in visible]))
    return "".join(line + "\n" for line in lines)


#: the indentation of a value too wide to stand beside its name (`key_values`)
HANG = 2


class Pair(NamedTuple):
    """One `Name  value` line of `key_values` (a value may hold several lines).
    `wrap`: False for a command or a document meant to be pasted, never broken."""

    key: str
    value: str
    style: str | None = None
    wrap: bool = True


def key_values(pairs: Sequence[Pair], layout: Layout) -> str:
    """Names in bold in a column, values beside them; on a terminal a value too long for
    its line is wrapped at spaces (a word longer than the room stays whole: the
    terminal folds it, procctl never breaks it), and one not to wrap (`wrap` False)
    goes on a line of its own below its name, indented HANG, when it fits there. No
    line ends in spaces."""
    indent = max(cell_width(pair.key) for pair in pairs) + 2
    room = layout.width - indent
    lines = []
    for pair in pairs:
        texts: list[str] = []
        for text in pair.value.split("\n"):
            if layout.terminal and pair.wrap and room >= 20 and cell_width(text) > room:
                texts.extend(_wrap(text, room))
            else:
                texts.append(text)
        widest = max(cell_width(text) for text in texts)
        if layout.terminal and not pair.wrap and room < widest <= layout.width - HANG:
            # a command to paste, too wide beside its name: whole, on lines of its own
            texts = texts if not pair.key else ["", *texts]
            indent_of = [HANG] * len(texts)
            if pair.key:
                indent_of[0] = indent
        else:
            indent_of = [indent] * len(texts)
        for number, text in enumerate(texts):
            key = pair.key if number == 0 else ""
            head = _paint(key, "bold", layout) + " " * (indent_of[number] - cell_width(key))
            lines.append((head + _paint(text, pair.style, layout)).rstrip(" "))
    return "".join(line + "\n" for line in lines)


def _wrap(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` columns where it has spaces to break at; its
    indentation repeated on each line."""
    import textwrap

    lead = text[:len(text) - len(text.lstrip(" "))]
    return textwrap.wrap(text, width, subsequent_indent=lead, break_long_words=False,
                         break_on_hyphens=False) or [text]


def line(text: str, layout: Layout) -> str | None:
    """What rich prints for `text` (escaped as markup, no style), or None when only rich
    can say (not plain, or long enough to wrap)."""
    if len(text) > layout.width or not is_plain(text):
        return None
    return text + "\n"
