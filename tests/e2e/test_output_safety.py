"""Human output neutralises control characters in data; `--json` keeps the exact text.

A param, a payload, a signal file or a process name may hold terminal escape sequences
(`ESC [31m`, a bell, a carriage return that rewrites the line, an 8-bit CSI, a bidi
override). Printed raw they would recolour, clear or fake what a person reads; every
human output shows them as visible escapes instead (`\\x1b`), one line per line.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest
from helpers import Procctl, Result, wait_for

#: ESC sequences, a bell, a carriage-return trick, a newline trick, an 8-bit CSI and a
#: right-to-left override: each must reach a terminal only as a visible escape.
EVIL = "\x1b[31mRED\x1b[0m\x07 ok\rFAKE\nLINE \x9b2J \u202egnp.exe"
RAW = ("\x1b", "\x07", "\r", "\x9b", "\u202e")

ECHO = """
[process]
name = "echo\\u001b[2J"

[process.params.text]
type = "str"

[[steps]]
id = "say"
task = "log"
with = { message = "said {{ text }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ text }}"
"""

FAILS = """
[process]
name = "fails"

[process.params.text]
type = "str"

[[steps]]
id = "boom"
kind = "throw"
message = "bad {{ text }}"
"""

WAITS = """
[process]
name = "waits"

[process.params.text]
type = "str"

[process.params.key]
type = "str"

[[steps]]
id = "hold"
kind = "checkpoint"
correlation_id = "w-{{ key }}-{{ text }}"
ttl = "1h"

[[steps]]
id = "done"
kind = "return"
value = "{{ text }}"
"""


def assert_neutral(result: Result) -> None:
    """No raw control character from data in the human output; its visible escapes are."""
    for text in (result.out, result.err):
        for char in RAW:
            assert char not in text, f"raw {char!r} reached the terminal:\n{result}"
    assert "\\x1b[31mRED\\x1b[0m\\x07" in result.out + result.err, str(result)
    lines = (result.out + result.err).splitlines()
    assert not any(line.startswith("LINE") for line in lines), f"a faked line:\n{result}"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    folder = tmp_path_factory.mktemp("safety")
    for name, text in (("echo", ECHO), ("fails", FAILS), ("waits", WAITS)):
        (folder / f"{name}.toml").write_text(text, encoding="utf-8")
    procctl = Procctl(folder / "home")
    try:
        echo, fails, waits = procctl.many(
            ("run", folder / "echo.toml", "--wait", "-p", f"text={EVIL}"),
            ("run", folder / "fails.toml", "--wait", "-p", f"text={EVIL}"),
            ("run", folder / "waits.toml", "--wait", "-p", f"text={EVIL}", "-p", "key=k1"))
        yield SimpleNamespace(procctl=procctl, folder=folder, echo=echo, fails=fails,
                              waits=waits)
    finally:
        procctl.stop_agent()


def _instance(procctl: Procctl, process: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = procctl.ok("list", "--json", "--process", process).json()
    return rows[0]


def test_run_wait_prints_logs_and_results_neutralised(runs: Any) -> None:
    assert runs.echo.code == 0, str(runs.echo)
    assert_neutral(runs.echo)
    assert "said \\x1b[31mRED" in runs.echo.out  # the log line, on one line
    assert "LINE" in runs.echo.out and "\\r" in runs.echo.out


def test_run_wait_failure_and_pause_are_neutralised(runs: Any) -> None:
    assert runs.fails.code == 1, str(runs.fails)
    assert_neutral(runs.fails)
    assert "bad \\x1b[31mRED" in runs.fails.err
    assert runs.waits.code == 0, str(runs.waits)
    assert_neutral(runs.waits)  # the correlation ID of the pause, and its resume command


def test_show_neutralises_params_result_error_history(runs: Any) -> None:
    procctl = runs.procctl
    for process in ("echo\x1b[2J", "fails", "waits"):
        instance = _instance(procctl, process)
        shown = procctl.ok("show", instance["instance_id"])
        assert_neutral(shown)
        exact = procctl.ok("show", instance["instance_id"], "--json").json()
        assert exact["params"]["text"] == EVIL
        assert exact["process"] == process
    echo = procctl.ok("show", _instance(procctl, "echo\x1b[2J")["instance_id"], "--json")
    assert echo.json()["result"] == EVIL
    assert any(e["data"].get("message") == f"said {EVIL}" for e in echo.json()["history"])


def test_list_and_list_paused_neutralise_names_and_correlation_ids(runs: Any) -> None:
    procctl = runs.procctl
    listed = procctl.ok("list")
    assert "\x1b" not in listed.out and "echo\\x1b[2J" in listed.out, str(listed)
    assert procctl.ok("list", "--json").json()[-1]["process"] in {"echo\x1b[2J", "fails",
                                                                  "waits"}
    paused = procctl.ok("list-paused")
    assert_neutral(paused)
    rows = procctl.ok("list-paused", "--json").json()
    assert [row["correlation_id"] for row in rows] == [f"w-k1-{EVIL}"]


def test_resume_and_signals_neutralise_correlation_ids_and_reasons(runs: Any) -> None:
    procctl = runs.procctl
    resumed = procctl("resume", "--correlation-id", f"w-k1-{EVIL}", "--data", f"why={EVIL}")
    assert resumed.code == 0, str(resumed)
    assert_neutral(resumed)
    nobody = procctl("resume", "--correlation-id", f"nobody-{EVIL}", "--pending",
                     "--json")  # held: no instance waits there
    assert nobody.json()["signal"]["correlation_id"] == f"nobody-{EVIL}"
    signals_dir = procctl.home / "signals"
    (signals_dir / "evil.tmp").write_text(json.dumps({"payload": {}, "correlation_id": 7}))
    (signals_dir / "evil.tmp").rename(signals_dir / "evil\x1b[31m.json")
    wait_for(lambda: any(r["status"] == "rejected"
                         for r in procctl.ok("signals", "--json").json()["signals"]),
             message="the bad signal file to be rejected")
    listed = procctl.ok("signals")
    for char in RAW:
        assert char not in listed.out, str(listed)
    assert "nobody-\\x1b[31mRED" in listed.out and "evil\\x1b[31m.json" in listed.out
