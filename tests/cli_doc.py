"""docs/cli.md's output examples: find them, say how each is checked, normalise output.

Every fenced block of docs/cli.md is either a command's synopsis (its lines start with
`procctl ` or continue one) or an example of what procctl prints, with an HTML comment on
the line right above its fence that says how it is checked:

    <!-- output: procctl list-paused -->             tests/e2e/test_cli_doc.py runs the
    <!-- output: COLUMNS=80 procctl explain {paused} -->   command in its scenario home
                                                      ({name}: a value of the scenario)
    <!-- output: procctl show {prefix} >/dev/null; exit 5 -->  and compares the block
    <!-- output: tables list-80 -->                   checked by another test file
                                                      (GROUP NAME, see CHECKED_BY)
    <!-- output: not checked (needs a full disk) --> not produced by a test, and why

A command shows both streams as an 80-column terminal shows them (the test runs it on
a pseudo-terminal); `2>/dev/null` keeps standard output only, `>/dev/null` standard
error only (both piped), and a `--json` command shows its standard output. Words after
`;`: `exit N` (the exit code, 0 unless given), `tty` (run on an 80-column
pseudo-terminal), `without KEY,...` (top-level JSON keys the block leaves out). A block
may begin with the `$ procctl ...` line that produced it, and a `...` line in a block
stands for any lines. A JSON block is compared as JSON, however it is laid out, keys in
their order (a block that starts with `"KEY":` shows those keys of the document).

What changes from run to run is masked in both texts the same way (`normalise`):
instance IDs, times, durations, sizes; the test maps its paths, host, agent ID and PID
to the doc's.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLI_MD = REPO / "docs" / "cli.md"

#: `<!-- output: GROUP NAME -->`: the test file that compares those blocks itself
CHECKED_BY = {
    "tables": "tests/e2e/test_tables.py",
    "explain": "tests/e2e/test_explain.py",
    "cancel": "tests/e2e/test_cancel.py",
    "purge": "tests/e2e/test_purge_finished.py",
    "signals": "tests/e2e/test_signals_clean.py",
    "ergonomics": "tests/e2e/test_cli_ergonomics.py",
}

_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_COMMENT = re.compile(r"^<!--\s*output:\s*(?P<text>.*?)\s*-->\s*$")
_GROUP = re.compile(r"^(?P<group>[a-z]+) (?P<name>[a-z0-9-]+)$")
_ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


class DocError(ValueError):
    """An output comment that cannot be read; the message names the line."""


@dataclass(frozen=True)
class Command:
    """What an `<!-- output: ... -->` comment asks the test to run."""

    env: dict[str, str]
    args: list[str]  # after `procctl`, with {name} placeholders
    stream: str = "both"  # "both", "out" or "err"
    exit: int = 0
    tty: bool = False
    without: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The command as a `$` line shows it."""
        return " ".join(["procctl", *(shlex.quote(a) if a != "{" else a for a in self.args)])


@dataclass(frozen=True)
class Block:
    """One fenced block of docs/cli.md, and how it is checked."""

    line: int  # the line of the opening fence (1-based)
    info: str  # the fence's info string: "", "json", ...
    body: str
    kind: str  # "run", "elsewhere", "not-checked" or "synopsis"
    command: Command | None = None
    group: str = ""  # "tables list-80" for kind "elsewhere"
    why: str = ""  # for kind "not-checked"
    annotation: str = field(default="", compare=False)

    @property
    def name(self) -> str:
        return f"cli.md:{self.line}"


def parse_command(text: str, where: str) -> Command:
    """`[ENV=V ...] procctl ARGS [>/dev/null | 2>/dev/null] [; WORDS]`."""
    command, _, words = text.partition(";")
    try:
        tokens = shlex.split(command)
    except ValueError as exc:
        raise DocError(f"{where}: the command cannot be read: {exc}") from None
    env: dict[str, str] = {}
    while tokens and _ENV.match(tokens[0]):
        key, _, value = tokens.pop(0).partition("=")
        env[key] = value
    if not tokens or tokens[0] != "procctl":
        raise DocError(f"{where}: an output comment names a `procctl ...` command, "
                       "`GROUP NAME` or `not checked (why)`")
    stream = "both"
    if tokens[-1] in (">/dev/null", "1>/dev/null"):
        stream = "err"
        tokens.pop()
    elif tokens[-1] == "2>/dev/null":
        stream = "out"
        tokens.pop()
    elif "--json" in tokens:
        stream = "out"  # the JSON document
    found: dict[str, object] = {}
    for word in (w.strip() for w in words.split(";")):
        if not word:
            continue
        if word == "tty":
            found["tty"] = True
        elif re.fullmatch(r"exit \d+", word):
            found["exit"] = int(word.split()[1])
        elif word.startswith("without "):
            found["without"] = tuple(k.strip() for k in word[8:].split(","))
        else:
            raise DocError(f"{where}: unknown word {word!r} after ';' "
                           "(exit N, tty, without KEY,...)")
    return Command(env, tokens[1:], stream, **found)  # type: ignore[arg-type]


def _synopsis(body: str) -> bool:
    lines = body.splitlines()
    return bool(lines) and lines[0].startswith("procctl ") and all(
        line.startswith(("procctl ", "  ")) for line in lines)


_LIST_LINE = re.compile(r"^\s*([-*+]|\d+\.)\s|^ {2}\S")


def _indented_examples(text: str) -> list[int]:
    """The lines where an indented code block starts (outside fences and lists)."""
    starts, fenced, last_text = [], False, ""
    lines = text.splitlines()
    for number, line in enumerate(lines, 1):
        if line.startswith("```"):
            fenced = not fenced
        elif (not fenced and re.match(r"^( {4}|\t)\S", line) and number > 1
              and not lines[number - 2].strip() and not _LIST_LINE.match(last_text)):
            starts.append(number)
        if line.strip() and not fenced:
            last_text = line
    return starts


def blocks(text: str) -> list[Block]:
    """Every fenced block of `text` (docs/cli.md), with how it is checked. An indented
    code block is refused: it can carry no comment of its own."""
    if indented := _indented_examples(text):
        raise DocError(f"docs/cli.md:{indented[0]}: an indented example: make it a fenced "
                       "block with an `<!-- output: ... -->` comment above it")
    lines = text.splitlines()
    found = []
    for match in _FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        where = f"docs/cli.md:{line}"
        above = lines[line - 2] if line >= 2 else ""
        comment = _COMMENT.match(above)
        body, info = match["body"], match["info"].strip()
        if comment is None:
            if not _synopsis(body):
                raise DocError(
                    f"{where}: an example with no `<!-- output: ... -->` comment above it: "
                    "name the command that prints it (see tests/cli_doc.py)")
            found.append(Block(line, info, body, "synopsis"))
            continue
        said = comment["text"]
        if said.startswith("not checked"):
            why = said.removeprefix("not checked").strip().strip("()")
            if not why:
                raise DocError(f"{where}: say why the example is not checked")
            found.append(Block(line, info, body, "not-checked", why=why, annotation=said))
        elif (group := _GROUP.match(said)) and group["group"] in CHECKED_BY:
            found.append(Block(line, info, body, "elsewhere", group=said, annotation=said))
        else:
            found.append(Block(line, info, body, "run", parse_command(said, where),
                               annotation=said))
    return found


#: What changes from run to run, and what it becomes (in this order).
_MASKS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)?"), "<TIME>"),
    (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d(:\d\d)?( UTC)?"), "<TIME>"),
    (re.compile(r"\b\d\d-\d\d \d\d:\d\d\b"), "<TIME>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<TIME>"),
    (re.compile(r"\b[0-9a-f]{12}\b"), "<ID>"),
    (re.compile(r"\bin (\d+[dhms] ?)+\b"), "<RELATIVE>"),
    (re.compile(r"\b(\d+[dhms] ?)+ ago\b"), "<RELATIVE>"),
    (re.compile(r"\b\d+(\.\d+)?s\b"), "<DURATION>"),
    (re.compile(r"\b\d+ (B|bytes)\b"), "<SIZE>"),
)


def normalise(text: str, homes: dict[str, str] | None = None) -> str:
    """`text` with what varies masked, runs of spaces made one, line ends stripped.

    `homes` maps paths (a test's temporary home) to what the doc shows instead."""
    for path, shown in sorted((homes or {}).items(), key=lambda kv: -len(kv[0])):
        text = text.replace(path, shown)
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return "\n".join(re.sub(r" {2,}", "  ", line).rstrip() for line in text.splitlines())


def shown_in(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `expected`, where a `...` line of `expected` stands for any
    lines (none included)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(shown_in(expected[1:], actual[start:]) for start in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and shown_in(expected[1:], actual[1:])
