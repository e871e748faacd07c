"""`list`, `list-paused`, `show` and `agents` as a person meets them: on a terminal of 80
and 160 columns (a real pseudo-terminal) and piped. An ID or a correlation ID is never
cut or broken across lines, a line never runs past the terminal's width (unless one ID
is wider), piped output carries no padding, `show` prints the last 20 events, and
`list` marks a call's child, says why a failed instance failed and pages by time and
by key."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import PROCCTL, REPO, Procctl

CHILD = """
[process]
name = "charge-card"

[[steps]]
id = "explode"
kind = "throw"
message = "the card was declined by the bank"
"""

PARENT = """
[process]
name = "checkout"

[[steps]]
id = "sub"
kind = "call"
file = "charge-card.toml"
"""

WAITER = """
[process]
name = "approval"

[process.params.key]
type = "str"

[[steps]]
id = "wait-for-the-answer"
kind = "checkpoint"
correlation_id = "approval-web-shop-order-{{ key }}"
ttl = "7d"
expects = { approved = "bool", by = "str?" }
"""

CHATTY = """
[process]
name = "batch"

[[steps]]
id = "each"
kind = "foreach"
items = "range(12)"

    [[steps.body]]
    id = "say"
    task = "log"
    with = { message = "iteration {{ item }} of a loop that writes a long history" }
"""


@pytest.fixture(scope="module")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A home with a paused instance (a long correlation ID), a parent whose child
    failed, and an instance with 40 events; the agent stopped (reads need none)."""
    folder = tmp_path_factory.mktemp("tables")
    for name, text in (("charge-card", CHILD), ("checkout", PARENT),
                       ("approval", WAITER), ("batch", CHATTY)):
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    procctl = Procctl(folder / "home")
    try:
        chatty = procctl.ok("run", folder / "batch.toml", "--wait", "--json").json()
        parent = procctl("run", folder / "checkout.toml", "--wait", "--json")
        assert parent.code == 1, str(parent)
        waiter = procctl.ok("run", folder / "approval.toml", "-p", "key=A-10017", "--wait",
                            "--json").json()
        assert waiter["status"] == "paused", waiter
    finally:
        procctl.stop_agent()
    rows = procctl.ok("list", "--json").json()
    child = next(row for row in rows if row["process"] == "charge-card")
    return SimpleNamespace(procctl=procctl, chatty=chatty, parent=parent.json(), child=child,
                           waiter=waiter, rows=rows)


def on_terminal(procctl: Procctl, columns: int, *args: str, colour: bool = False) -> str:
    """What `procctl ARGS` writes to stdout on a terminal `columns` wide (a
    pseudo-terminal; a dumb one, with no codes, unless `colour`)."""
    env = {**procctl.env, "COLUMNS": str(columns), "LINES": "50",
           "TERM": "xterm-256color" if colour else "dumb"}
    if colour:
        env.pop("NO_COLOR", None)
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([PROCCTL, *args], stdout=follower, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        os.close(follower)
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the terminal's other end is closed: all was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
        if proc.stderr:
            proc.stderr.close()
    finally:
        os.close(leader)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def fits(text: str, columns: int, whole: list[str]) -> None:
    """Each line at most `columns` wide, none ending in a space, and every string of
    `whole` printed whole, on one line."""
    lines = text.splitlines()
    assert all(len(line) <= columns for line in lines), "\n" + text
    assert not any(line.endswith(" ") for line in lines), repr(text)
    for word in whole:
        assert any(word in line for line in lines), f"{word!r} cut or broken:\n{text}"


def ids(tables: Any) -> list[str]:
    return [row["instance_id"] for row in tables.rows]


@pytest.mark.parametrize("columns", [80, 160])
def test_list_fits_the_terminal_and_keeps_every_id_whole(tables: Any, columns: int) -> None:
    text = on_terminal(tables.procctl, columns, "list")
    fits(text, columns, ids(tables))
    header = text.splitlines()[0].split()
    # at 80 columns PARENT gives way to the note; a child is marked all the same
    assert header == ["INSTANCE", "PROCESS", "STATUS", "STARTED", "DURATION",
                      *(["PARENT"] if columns == 160 else []), "NOTE"], text
    child_line = next(line for line in text.splitlines() if tables.child["instance_id"] in line)
    assert "\u21b3 charge-card" in child_line, text
    assert (tables.parent["instance_id"] in child_line) == (columns == 160), text
    assert "explode: the card" in child_line
    if columns == 80:
        # STARTED was shortened (today: the time of day) and the error cut to the room left
        assert re.search(r"  \d\d:\d\d:\d\d  ", child_line), child_line
        assert child_line.endswith("\u2026"), child_line
    else:
        assert re.search(r"  \d{4}-\d\d-\d\d \d\d:\d\d:\d\d  ", child_line), child_line
        assert child_line.endswith("by the bank"), child_line


def test_list_piped_is_whole_and_unpadded(tables: Any) -> None:
    out = tables.procctl.ok("list").out
    lines = out.splitlines()
    assert not any(line.endswith(" ") for line in lines), repr(out)
    child_line = next(line for line in lines if tables.child["instance_id"] in line)
    assert child_line.split()[1:4] == ["\u21b3", "charge-card", "failed"], child_line
    assert child_line.endswith(f"{tables.parent['instance_id']}  explode: the card was "
                               "declined by the bank")
    # the parent failed because its child did; the chatty one completed, no note
    parent_line = next(line for line in lines if tables.parent["instance_id"] in line)
    assert "failed" in parent_line.split()
    chatty_line = next(line for line in lines if tables.chatty["instance_id"] in line)
    assert chatty_line.split()[1:3] == ["batch", "completed"]
    assert chatty_line.split()[-1] == "-"  # no parent, no note


def test_list_pages_by_key_and_filters_by_time(tables: Any) -> None:
    every = ids(tables)
    assert len(every) == 4
    first = tables.procctl.ok("list", "--limit", "2")
    assert [line.split()[0] for line in first.out.splitlines()[1:]] == every[:2]
    suggested = re.search(r"next page: (procctl list .*)$", first.err.strip())
    assert suggested, first.err
    assert suggested.group(1) == f"procctl list --limit 2 --after {every[1]}"
    second = tables.procctl.ok("list", "--limit", "2", "--after", every[1][:6], "--json")
    assert [row["instance_id"] for row in second.json()] == every[2:]
    assert "next page" not in second.err
    after_last = tables.procctl.ok("list", "--after", every[-1])
    assert after_last.out.startswith("No instances in home"), str(after_last)
    assert f"after {every[-1]}" in after_last.out

    recent, future, old, bounded, bad = tables.procctl.many(
        ("list", "--json", "--since", "1h"), ("list", "--json", "--since", "2099-01-01"),
        ("list", "--json", "--until", "1h"),
        ("list", "--json", "--since", tables.waiter["started_at"], "--until", "2099-01-01T00:00"),
        ("list", "--since", "yesterday"))
    assert [row["instance_id"] for row in recent.json()] == every
    assert future.json() == [] and old.json() == []
    assert [row["instance_id"] for row in bounded.json()] == [tables.waiter["instance_id"]]
    assert bad.code == 2 and "--since" in bad.err and "'yesterday'" in bad.err, str(bad)


@pytest.mark.parametrize("columns", [80, 160])
def test_list_paused_fits_and_keeps_the_correlation_id_whole(tables: Any, columns: int) -> None:
    correlation_id = "approval-web-shop-order-A-10017"
    text = on_terminal(tables.procctl, columns, "list-paused")
    fits(text, columns, [correlation_id, tables.waiter["instance_id"]])
    header = text.splitlines()[0]
    if columns == 80:
        assert "SIZE" not in header and "ITER" not in header, text
        assert "in 6d 23h" in text and "2026" not in text.splitlines()[1], text
    else:
        assert header.split()[-2:] == ["ITER", "SIZE"], text


def test_list_paused_wide_and_piped(tables: Any) -> None:
    piped = tables.procctl.ok("list-paused")
    assert not any(line.endswith(" ") for line in piped.out.splitlines()), repr(piped.out)
    assert "What each expects: procctl list-paused --wide" in piped.err
    wide = on_terminal(tables.procctl, 80, "list-paused", "--wide")
    header = wide.splitlines()[0].split()
    assert header[-4:] == ["SIZE", "EXPECTS", "RESUME", "WITH"], wide
    row = wide.splitlines()[1]
    assert row.endswith("  approved (bool), by (str, optional)  procctl resume "
                        "--correlation-id approval-web-shop-order-A-10017 "
                        "--data approved=true"), wide
    real = (tables.procctl.home / "signals").resolve()
    err = tables.procctl.ok("list-paused", "--wide").err
    assert f"Or drop a signal file into {real}:" in err, err


@pytest.mark.parametrize("columns", [80, 160])
def test_show_prints_the_last_20_events_fitted(tables: Any, columns: int) -> None:
    chatty = tables.chatty["instance_id"]
    total = len(tables.procctl.ok("show", chatty, "--json").json()["history"])
    assert total > 30
    text = on_terminal(tables.procctl, columns, "show", chatty)
    fits(text, columns, [chatty])
    lines = text.splitlines()
    title = lines.index(f"History (the last 20 of {total} events; --history all shows "
                        "every one)")
    assert lines[title + 1].split() == ["TIME", "EVENT", "STEP", "DETAIL"]
    history = lines[title + 2:]
    assert len(history) == 20 and "instance_completed" in history[-1], text
    if columns == 80:
        assert any(line.endswith("\u2026") for line in history), text  # DETAIL cut


def test_show_history_all_and_a_number(tables: Any) -> None:
    chatty = tables.chatty["instance_id"]
    total = len(tables.procctl.ok("show", chatty, "--json").json()["history"])
    every, five, bad = tables.procctl.many(("show", chatty, "--history", "all"),
                                         ("show", chatty, "--history", "5"),
                                         ("show", chatty, "--history", "some"))
    lines = every.out.splitlines()
    assert lines[lines.index("History") + 2:][0].split()[2] == "instance_started"
    assert len(lines) - lines.index("History") - 2 == total
    assert f"History (the last 5 of {total} events" in five.out
    assert bad.code == 2 and "--history" in bad.err, str(bad)
    assert not any(line.endswith(" ") for line in every.out.splitlines())


def test_show_of_a_paused_instance_keeps_its_commands_on_one_line(tables: Any) -> None:
    waiter = tables.waiter["instance_id"]
    correlation_id = "approval-web-shop-order-A-10017"
    text = on_terminal(tables.procctl, 80, "show", waiter)
    real = (tables.procctl.home / "signals").resolve()
    lines = text.splitlines()
    resume = next(line for line in lines if line.startswith("Resume "))
    assert resume.split(None, 1)[1] == (f"procctl resume --correlation-id {correlation_id} "
                                        "--data approved=true")
    assert "Expects         approved (bool), by (str, optional)" in lines
    assert any(line.startswith("Correlation ID  " + correlation_id) for line in lines)
    assert any(str(real) in line for line in lines), text
    # the history fits; what is too long for 80 columns (the resume line) is left whole
    history = lines[lines.index("History") + 1:]
    assert all(len(line) <= 80 for line in history), text


def test_show_marks_the_child_and_names_the_parent(tables: Any) -> None:
    child = tables.child["instance_id"]
    out = tables.procctl.ok("show", child).out
    assert re.search(f"^Parent +{tables.parent['instance_id']} \\(this instance runs", out,
                     re.MULTILINE), out
    assert re.search("^Error +the card was declined", out, re.MULTILINE), out


def test_agents_piped_is_unpadded(tables: Any) -> None:
    out = tables.procctl.ok("agents").out
    lines = out.splitlines()
    assert lines[0].split() == ["AGENT", "HOST", "POOL", "PID", "STATE", "LEASE",
                                "INSTANCES"]
    assert not any(line.endswith(" ") for line in lines), repr(out)
    narrow = on_terminal(tables.procctl, 40, "agents")
    agent = lines[1].split()[0]
    fits(narrow, 40, [agent])
    assert "PID" not in narrow.splitlines()[0]


def test_a_terminal_with_colour_gets_bold_headers_and_coloured_statuses(tables: Any) -> None:
    text = on_terminal(tables.procctl, 160, "list", colour=True)
    assert text.startswith("\x1b[1mINSTANCE"), repr(text)
    assert "\x1b[31mfailed\x1b[0m" in text, repr(text)
    plain_text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    fits(plain_text, 160, ids(tables))


# docs/cli.md's examples of list, list-paused and show are this home's output, marked
# `<!-- output: tables NAME -->` above the block; compared with what changes from run
# to run (IDs, times, durations, the home) masked and runs of spaces made one.
CLI_MD = REPO / "docs" / "cli.md"
_DOC_BLOCK = re.compile(r"<!-- output: tables (?P<name>[a-z0-9-]+) -->\n```\n(?P<body>.*?)```",
                        re.DOTALL)
_MASKS = ((re.compile(r"\b[0-9a-f]{12}\b"), "ID"),
          (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "TIME"),
          (re.compile(r"\b\d\d:\d\d:\d\d\b"), "TIME"),
          (re.compile(r"\bin \d+[dhms]( \d+[dhms])?"), "in WHEN"),
          (re.compile(r"\b\d+\.\d\ds\b"), "SECONDS"),
          (re.compile(r"\b\d+ (B|bytes)\b"), "SIZE"),
          (re.compile(r"\S*/signals\b"), "DIR/signals"),
          (re.compile(r" {2,}"), "  "))


def masked(text: str) -> str:
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def test_the_docs_show_this_output(tables: Any) -> None:
    real = {
        "list-80": on_terminal(tables.procctl, 80, "list"),
        "list-paused-80": on_terminal(tables.procctl, 80, "list-paused"),
        "list-paused-wide": tables.procctl.ok("list-paused", "--wide").out,
        "show-80": on_terminal(tables.procctl, 80, "show", tables.waiter["instance_id"]),
    }
    documented = {m["name"]: m["body"] for m in _DOC_BLOCK.finditer(CLI_MD.read_text())}
    assert {name: masked(text) for name, text in documented.items()} == {
        name: masked(text) for name, text in real.items()}, "\n".join(
            f"<!-- output: tables {name} -->\n```\n{text}```" for name, text in real.items())
