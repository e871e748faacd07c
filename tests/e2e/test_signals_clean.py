"""`procctl signals` as a person meets it: its table on a terminal of 80 and 160 columns
(a real pseudo-terminal) and piped; and `procctl signals --clear --older-than D`, which
removes old rejected, unmatched and duplicate records and old files from processed/
and rejected/, never a pending signal, with or without an agent."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import sqlite3
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from helpers import PROCCTL, REPO, Procctl, unique_key, wait_for

LONG_ID = "order-approval-for-customer"  # with a key: 38 characters


CLI_MD = REPO / "docs" / "cli.md"
_MASKS = ((re.compile(rf"{LONG_ID}-[0-9a-f]{{10}}"), "CORRELATION-ID"),
          (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "TIME"),
          (re.compile(r"\b\d\d:\d\d:\d\d\b"), "TIME"),
          (re.compile(r"/\S+/signals/processed"), "DIR/processed"))


def masked(text: str) -> str:
    """Output with what changes from run to run (keys, times, the home) masked."""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def doc_example(name: str) -> str:
    """docs/cli.md's `<!-- output: signals NAME -->` block."""
    found = re.search(rf"<!-- output: signals {name} -->\n```\n(?P<body>.*?)```",
                      CLI_MD.read_text(), re.DOTALL)
    assert found, name
    return found["body"]


def drop(directory: Path, name: str, text: str) -> None:
    """The signal file protocol: write NAME.tmp, then rename it to NAME.json."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.tmp").write_text(text, encoding="utf-8")
    os.rename(directory / f"{name}.tmp", directory / f"{name}.json")


def signals(procctl: Procctl) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = procctl.ok("signals", "--json").json()["signals"]
    return rows


def with_signals(procctl: Procctl) -> dict[str, Any]:
    """Two rejected files and one pending signal, read by a real agent (left running)."""
    procctl.ok("agent", "start")
    directory = procctl.home / "signals"
    correlation = f"{LONG_ID}-{unique_key()}"
    drop(directory, "bad-key", '{"correlation_id": "x", "colour": "red"}')
    drop(directory, "not-json", "this is not JSON at all, so the agent refuses it")
    drop(directory, "early", json.dumps({"correlation_id": correlation}))
    wait_for(lambda: len(signals(procctl)) == 3, message="the agent reading 3 files")
    return {"directory": directory, "correlation": correlation}


def on_terminal(procctl: Procctl, columns: int, *args: str) -> str:
    """What `procctl ARGS` writes on a (dumb) terminal `columns` wide."""
    env = {**procctl.env, "COLUMNS": str(columns), "LINES": "50", "TERM": "dumb"}
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([PROCCTL, *args], stdout=follower, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, env=env, cwd=REPO)
        os.close(follower)
        chunks, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end is closed: all was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(leader)
        if proc.stderr:
            proc.stderr.close()
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture(scope="module")
def signals_home(tmp_path_factory: pytest.TempPathFactory) -> Any:
    procctl = Procctl(tmp_path_factory.mktemp("signals-table") / "home")
    try:
        found = with_signals(procctl)
    finally:
        procctl.stop_agent()
    return procctl, found["correlation"]


@pytest.mark.parametrize("columns", [80, 160])
def test_the_table_fits_the_terminal_and_keeps_the_correlation_id_whole(
        signals_home: Any, columns: int) -> None:
    procctl, correlation = signals_home
    text = on_terminal(procctl, columns, "signals")
    lines = text.splitlines()
    assert all(len(line) <= columns for line in lines), "\n" + text
    assert not any(line.endswith(" ") for line in lines), repr(text)
    assert lines[0].split() == ["RECEIVED", "STATUS", "CORRELATION", "ID",
                                *(["SOURCE"] if columns == 160 else []), "REASON"], text
    pending = next(line for line in lines if "pending" in line)
    assert correlation in pending, text  # never cut, never broken
    if columns == 80:
        assert pending.endswith("\u2026"), pending  # the reason cut to the room left
        # docs/cli.md shows this output (the key and the times masked)
        assert masked(doc_example("table")) == masked(f"$ procctl signals\n{text}"), text
    else:
        assert "file:early.json" in pending and pending.endswith("held pending"), pending


def test_piped_the_table_is_whole_and_unpadded(signals_home: Any) -> None:
    procctl, correlation = signals_home
    lines = procctl.ok("signals").out.splitlines()
    assert not any(line.endswith(" ") for line in lines)
    pending = next(line for line in lines if correlation in line)
    assert pending.endswith("no paused instance holds this correlation ID yet; held pending")
    rejected = next(line for line in lines if "file:bad-key.json" in line)
    assert rejected.endswith("unknown key 'colour'; keys are correlation_id, payload, "
                             "signal_id, set, sender"), rejected


def age(home: Path, source: str, days: float) -> None:
    """Make a signal record look `days` days old."""
    moment = (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="microseconds")
    db = sqlite3.connect(home / "procctl.db")
    try:
        with db:
            db.execute("UPDATE signals SET received_at = ? WHERE source = ?", (moment, source))
    finally:
        db.close()


def filed(directory: Path) -> list[str]:
    return sorted(path.name for folder in ("processed", "rejected")
                  if (directory / folder).is_dir() for path in (directory / folder).iterdir())


def test_clear_removes_old_records_and_files_and_never_a_pending_signal(
        procctl: Procctl) -> None:
    found = with_signals(procctl)
    directory = found["directory"]
    assert filed(directory) == ["bad-key.json", "bad-key.json.error.json", "early.json",
                                "not-json.json", "not-json.json.error.json"]
    age(procctl.home, "file:bad-key.json", 10)

    dry = procctl.ok("signals", "--clear", "--older-than", "7d", "--dry-run")
    assert dry.out.splitlines()[0].startswith("Would clear 1 signal record received before ")
    assert dry.out.splitlines()[1] == (f"Would clear 0 files filed before then in "
                                       f"{directory / 'processed'} and rejected.")
    assert len(signals(procctl)) == 3

    week = procctl.ok("signals", "--clear", "--older-than", "7d", "--json").json()
    assert (week["records"], week["files"], week["dry_run"]) == (1, 0, False)
    assert [row["source"] for row in signals(procctl)] == ["file:early.json",
                                                           "file:not-json.json"]
    assert len(filed(directory)) == 5  # the files are younger than a week

    procctl.stop_agent()  # with no agent, the same
    now = procctl.ok("signals", "--clear", "--older-than", "0s")
    assert now.out.splitlines() == [
        now.out.splitlines()[0], f"Cleared 5 files filed before then in "
        f"{directory / 'processed'} and rejected."]
    assert now.out.startswith("Cleared 1 signal record received before ")
    assert [(row["status"], row["correlation_id"]) for row in signals(procctl)] == [
        ("pending", found["correlation"])]
    assert filed(directory) == []
    # docs/cli.md shows this output (times and the home masked)
    real = (f"$ procctl signals --clear --older-than 7d --dry-run\n{dry.out}"
            f"$ procctl signals --clear --older-than 0s\n{now.out}")
    assert masked(doc_example("clear")) == masked(real), real


def test_clear_says_what_is_missing(procctl: Procctl) -> None:
    missing = procctl("signals", "--clear")
    assert missing.code == 2
    assert missing.err.splitlines() == [
        "Error: --clear needs --older-than: how old a signal must be to go",
        "Hint: for example: procctl signals --clear --older-than 7d"]
    alone = procctl("signals", "--older-than", "7d")
    assert alone.code == 2 and "Error: --older-than goes with --clear" in alone.err
