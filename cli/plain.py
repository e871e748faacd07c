"""The text rich prints for procctl's simple tables and lines, written without rich.

Importing rich's console takes a third of what `python -c "import typer, rich"` takes,
and laying out a table of fifty instances with it as much again: more than the rest of
`procctl list` together (bench/cli_startup.py). For the output where procctl can say
what rich would write, byte for byte, it writes it itself:

- how rich's `Console(highlight=False)` for stdout would write (`stdout_layout`): its
  width, and whether it sends bold and colour codes (a terminal) or none (a pipe, a
  file), decided from the same environment rich reads (TTY_COMPATIBLE, FORCE_COLOR,
  TERM, NO_COLOR, COLUMNS and LINES, the terminal's size); None where procctl cannot
  tell (Windows, an environment that makes rich treat a terminal as none or the reverse);
- cells and lines of printable ASCII with no markup, escapes or emoji codes, in a table
  no wider than the console (rich would wrap it).

Anything else goes through rich (cli/render.py). tests/unit/test_cli_startup_render.py
compares the two with rich itself.
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
    (a terminal that is not dumb); `colours`: colour codes too (no NO_COLOR). (A
    NamedTuple: made at start-up, a fifth of a dataclass's cost.)"""

    width: int
    styles: bool
    colours: bool


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
        return None if terminal else Layout(PIPED_WIDTH, styles=False, colours=False)
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


def table(header: Sequence[str], rows: Sequence[Sequence[str]], layout: Layout,
          styles: Sequence[Sequence[str | None]] | None = None) -> str | None:
    """What rich prints for `Table(box=None, pad_edge=False, header_style="bold")` of
    these cells (`styles[r][c]`: the style of row r's cell c, or None): each column as
    wide as its widest cell, two spaces between, lines padded to the table's width. None
    when only rich can say: a cell that is not plain (`is_plain`), a style not in SGR,
    or a table wider than the console (rich would wrap its cells)."""
    columns = list(zip(header, *rows, strict=True))
    widths = [max(map(len, column)) for column in columns]
    if sum(widths) + 2 * (len(widths) - 1) > layout.width:
        return None
    if not all(is_plain(cell) for column in columns for cell in column):
        return None
    pad = _styled(" ", "bold", layout)
    titles = [_styled(title.ljust(size), "bold", layout) for title, size in zip(
        header, widths, strict=True)]
    lines = [f"{pad}{pad}".join(title or "" for title in titles)]
    for number, row in enumerate(rows):
        cells = []
        for column, (cell, size) in enumerate(zip(row, widths, strict=True)):
            styled = _styled(cell, styles[number][column] if styles else None, layout)
            if styled is None:
                return None
            cells.append(styled + " " * (size - len(cell)))
        lines.append("  ".join(cells))
    return "".join(line + "\n" for line in lines)


def line(text: str, layout: Layout) -> str | None:
    """What rich prints for `text` (escaped as markup, no style), or None when only rich
    can say (not plain, or long enough to wrap)."""
    if len(text) > layout.width or not is_plain(text):
        return None
    return text + "\n"
