"""`procctl purge --finished --older-than D` and the `retention` setting, through the real
command and agent: what goes (completed, failed, cancelled instances that ended before
the cut, with their history), what stays (recent ones, paused ones), with and without an
agent, and the agent's clock purging by itself.

Each test has its own home (a purge removes every old instance of a home, so the shared
agent's home would lose other tests' instances).
"""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from helpers import REPO, SAMPLES, Procctl, run_paused, unique_key, wait_for

FAILING = """
[process]
name = "fails"

[[steps]]
id = "boom"
kind = "throw"
message = "boom"
"""


CLI_MD = REPO / "docs" / "cli.md"
_MASKS = ((re.compile(r"\b[0-9a-f]{12}\b"), "ID"),
          (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00"), "ISO-TIME"),
          (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "TIME"))


def masked(text: str) -> str:
    """Output with what changes from run to run (IDs, times) masked."""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def doc_examples(command: str) -> dict[str, str]:
    """docs/cli.md's examples of `command`: each `<!-- output: COMMAND NAME -->` block."""
    found = re.finditer(rf"<!-- output: {command} (?P<name>[a-z-]+) -->\n```[a-z]*\n"
                        r"(?P<body>.*?)```", CLI_MD.read_text(), re.DOTALL)
    return {m["name"]: m["body"] for m in found}


def age(home: Path, instance_id: str, days: float) -> None:
    """Make an instance look as if it ended `days` days ago (what weeks of waiting do)."""
    ended = datetime.now(UTC) - timedelta(days=days)
    db = sqlite3.connect(home / "procctl.db")
    try:
        with db:
            db.execute("UPDATE instances SET started_at = ?, ended_at = ? WHERE id = ?",
                       ((ended - timedelta(seconds=2)).isoformat(timespec="microseconds"),
                        ended.isoformat(timespec="microseconds"), instance_id))
    finally:
        db.close()


def completed(procctl: Procctl) -> str:
    summary = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
    assert summary["status"] == "completed", summary
    return str(summary["instance_id"])


def ids(procctl: Procctl) -> set[str]:
    return {row["instance_id"] for row in procctl.ok("list", "--json").json()}


def test_purge_removes_what_ended_before_the_cut_and_keeps_the_rest(
        procctl: Procctl, tmp_path: Path) -> None:
    old, recent = completed(procctl), completed(procctl)
    definition = tmp_path / "fails.toml"
    definition.write_text(FAILING, encoding="utf-8")
    failed = procctl("run", definition, "--wait", "--json")
    assert failed.code == 1, str(failed)
    old_failed = failed.json()["instance_id"]
    waiting = run_paused(procctl, SAMPLES / "approval.toml", "-p",
                         f"order={unique_key()}")["instance_id"]
    age(procctl.home, old, 40)
    age(procctl.home, old_failed, 31)

    dry = procctl.ok("purge", "--finished", "--older-than", "30d", "--dry-run")
    assert f"Would purge {old} (hello, completed, ended " in dry.out
    assert f"Would purge {old_failed} (fails, failed, ended " in dry.out
    assert "Would purge 2 finished instances that ended before " in dry.out
    assert recent not in dry.out and waiting not in dry.out
    assert ids(procctl) == {old, recent, old_failed, waiting}  # a dry run removes nothing

    done = procctl.ok("purge", "--finished", "--older-than", "30d")
    assert f"Purged {old} (hello, completed, ended " in done.out
    assert "Purged 2 finished instances that ended before " in done.out
    assert ", with " in done.out and "history events" in done.out
    assert ids(procctl) == {recent, waiting}
    gone = procctl("show", old)
    assert gone.code == 5 and "Error:" in gone.err, str(gone)

    # Everything finished, whatever its age; never a paused instance.
    everything_out = procctl.ok("purge", "--finished", "--older-than", "0s", "--json").out
    everything = json.loads(everything_out)
    assert [row["instance_id"] for row in everything["purged"]] == [recent]
    assert everything["count"] == 1 and everything["events"] > 0
    assert ids(procctl) == {waiting}
    assert [row["instance_id"] for row in procctl.ok("list-paused", "--json").json()] == [
        waiting]
    again = procctl.ok("purge", "--finished", "--older-than", "0s")
    assert "nothing to purge" in again.out

    # docs/cli.md shows this output (IDs and times masked)
    real = {"dry-run": f"$ procctl purge --finished --older-than 30d --dry-run\n{dry.out}",
            "done": f"$ procctl purge --finished --older-than 30d\n{done.out}",
            "json": everything_out}
    assert {name: masked(text) for name, text in doc_examples("purge").items()} == {
        name: masked(text) for name, text in real.items()}, "\n".join(real.values())


def test_purge_works_without_an_agent(procctl: Procctl) -> None:
    instance_id = completed(procctl)
    procctl.stop_agent()
    listed = procctl.ok("purge", "--finished", "--older-than", "0s", "--dry-run", "--json")
    assert listed.json()["purged"][0]["instance_id"] == instance_id
    assert listed.json()["events"] is None  # a dry run counts no rows
    assert procctl.agent_pid() is None or not (procctl.home / "agent.sock").exists()
    done = procctl.ok("purge", "--finished", "--older-than", "0s", "--json").json()
    assert done["count"] == 1 and done["purged"][0]["status"] == "completed"
    assert ids(procctl) == set()
    assert not (procctl.home / "agent.sock").exists()  # no agent was started for it


def test_purge_says_what_is_missing(procctl: Procctl) -> None:
    nothing = procctl("purge")
    assert nothing.code == 2
    assert nothing.err.splitlines() == [
        "Error: say what to purge: procctl purge --finished",
        "Hint: for example: procctl purge --finished --older-than 30d"]
    no_age = procctl("purge", "--finished")
    assert no_age.code == 2 and "needs --older-than" in no_age.err, str(no_age)
    bad = procctl("purge", "--finished", "--older-than", "a month")
    assert bad.code == 2 and "Error: --older-than: 'a month' is not a duration" in bad.err


def test_the_agent_applies_the_retention_setting(procctl: Procctl) -> None:
    instance_id = completed(procctl)
    procctl.stop_agent()
    procctl.ok("config", "set", "retention", "30d")
    age(procctl.home, instance_id, 31)
    kept = completed(procctl)  # starts the agent: its first retention pass comes at once
    wait_for(lambda: instance_id not in ids(procctl), timeout=20,
             message="the agent's retention pass")
    assert kept in ids(procctl)
    log = wait_for(lambda: [json.loads(line) for line in procctl.home.joinpath(
        "agent.log").read_text().splitlines() if "retention: purged" in line],
        message="the retention log line")
    assert log[0]["msg"].startswith("retention: purged 1 finished instance(s) that ended "
                                    "before ")
    assert log[0]["purged"] == 1


@pytest.mark.postgres
def test_purge_on_a_postgresql_store(tmp_path: Path, pg_url: str) -> None:
    procctl = Procctl(tmp_path / "home")
    procctl.env["PROCCTL_STORE_URL"] = pg_url
    try:
        done = completed(procctl)
        waiting = run_paused(procctl, SAMPLES / "approval.toml")["instance_id"]
        dry = procctl.ok("purge", "--finished", "--older-than", "0s", "--dry-run", "--json")
        assert [row["instance_id"] for row in dry.json()["purged"]] == [done]
        purged = procctl.ok("purge", "--finished", "--older-than", "0s", "--json").json()
        assert purged["count"] == 1 and purged["events"] > 0
        assert ids(procctl) == {waiting}
    finally:
        procctl.stop_agent()
