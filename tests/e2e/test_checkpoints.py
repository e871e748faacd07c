"""Checkpoints through `procctl` and a real agent: what `run --wait` and `list-paused`
print of a pause, a correlation ID clash as printed, and a paused instance across the
agent's stop and start.

What a checkpoint stores and how an instance resumes from it (loops, branches, result
fields, continue, the pinned definition, --set) is checked in-process on the real
engine: tests/engine/test_checkpoints.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from helpers import Procctl, Result, run_paused, unique_key, wait_for

WriteDefinition = Callable[..., Path]


def _resumed(result: Result) -> dict[str, Any]:
    """The instance summary a successful `resume --json` printed."""
    assert result.code == 0, str(result)
    outcome = result.json()
    assert outcome["signal"]["status"] == "applied", outcome
    instance: dict[str, Any] = outcome["instance"]
    return instance


def _paused_rows(procctl: Procctl) -> dict[str, dict[str, Any]]:
    rows = procctl.ok("list-paused", "--json").json()
    return {row["instance_id"]: row for row in rows}


# A process that sets a variable, pauses, and returns what it stored.
PAUSING = """
[process]
name = "pausing"

[process.params.key]
type = "str"

[[steps]]
id = "prepare"
kind = "set"
values = { total = 42 }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "pausing-{{ key }}"
ttl = "2h"

[[steps]]
id = "done"
kind = "return"
value = "{{ total }}"
"""


def test_run_wait_reports_the_pause_and_list_paused_shows_it(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(PAUSING)
    one, two = unique_key(), unique_key()
    plain, as_json = shared_procctl.many(("run", path, "--wait", "-p", f"key={one}"),
                                         ("run", path, "--wait", "--json", "-p", f"key={two}"))
    assert plain.code == 0, str(plain)
    assert "paused at checkpoint wait" in plain.out, str(plain)
    assert f"correlation ID pausing-{one}" in plain.out
    assert f"Resume it with: procctl resume --correlation-id pausing-{one}" in plain.out

    assert as_json.code == 0, str(as_json)
    summary = as_json.json()
    assert summary["status"] == "paused"
    assert summary["correlation_id"] == f"pausing-{two}"
    assert summary["resume_command"] == f"procctl resume --correlation-id pausing-{two}"
    assert summary["checkpoint"]["step_id"] == "wait"
    assert summary["checkpoint"]["iteration"] == 0
    assert summary["result"] is None and summary["error"] is None
    second_id = summary["instance_id"]

    as_rows, as_table = shared_procctl.many(("list-paused", "--json"), ("list-paused",))
    assert as_rows.code == 0 and as_table.code == 0, f"{as_rows}\n{as_table}"
    rows = {r["instance_id"]: r for r in as_rows.json()}
    row = rows[second_id]
    assert set(row) >= {"correlation_id", "instance_id", "process", "checkpoint", "paused_at",
                        "expires_at", "resume_at", "iteration", "bytes"}
    assert row["correlation_id"] == f"pausing-{two}"
    assert row["process"] == "pausing"
    assert row["checkpoint"] == "wait"
    assert row["paused_at"] == summary["paused_at"]
    assert row["resume_at"] is None
    assert row["iteration"] == 0
    assert isinstance(row["bytes"], int) and row["bytes"] > 0
    ttl = datetime.fromisoformat(row["expires_at"]) - datetime.fromisoformat(row["paused_at"])
    assert abs(ttl - timedelta(hours=2)) < timedelta(seconds=30)
    first = [r for r in rows.values() if r["correlation_id"] == f"pausing-{one}"]
    assert len(first) == 1

    table = as_table.out
    assert "CORRELATION ID" in table and "CHECKPOINT" in table and "EXPIRES" in table
    line = next(t for t in table.splitlines() if f"pausing-{two}" in t)
    assert second_id in line and "pausing" in line and "wait" in line
    assert f"{row['bytes']} B" in line

    done = shared_procctl.many(("resume", "-c", f"pausing-{one}", "--json"),
                               ("resume", "-c", f"pausing-{two}", "--json"))
    for result in done:
        instance = _resumed(result)
        assert instance["status"] == "completed"
        assert instance["result"] == 42
    rows = _paused_rows(shared_procctl)
    assert second_id not in rows and first[0]["instance_id"] not in rows


def test_a_correlation_id_clash_is_one_printed_error_naming_the_holder(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(PAUSING)
    key = unique_key()
    first = run_paused(shared_procctl, path, "-p", f"key={key}")
    text = shared_procctl("run", path, "--wait", "-p", f"key={key}")
    assert text.code == 1, str(text)
    assert first["instance_id"] in text.err and "already held" in text.err
    instance = _resumed(shared_procctl("resume", "-c", f"pausing-{key}", "--json"))
    assert instance["instance_id"] == first["instance_id"]


SETTABLE = """
[process]
name = "settable"

[process.params.key]
type = "str"

[[steps]]
id = "setup"
kind = "set"
values = { n = 1, word = "a" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "settable-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = { n = "{{ n }}", double = "{{ n * 2 }}", word = "{{ word }}" }
"""


def test_a_paused_instance_is_not_running_and_survives_an_agent_restart(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SETTABLE)
    summary = run_paused(procctl, path, "-p", "key=restart")
    instance_id = summary["instance_id"]

    # Paused means out of memory: the agent runs no task for it.
    def idle() -> bool:
        status = procctl.ok("agent", "status", "--json").json()
        return bool(status["instances_running"] == 0)

    wait_for(idle, timeout=5, message="no running instance while paused")

    procctl.ok("agent", "stop")
    # Read from the store, with no agent.
    rows, shown = procctl.many(("list-paused", "--json"), ("show", instance_id, "--json"))
    assert instance_id in [row["instance_id"] for row in rows.json()], str(rows)
    assert shown.json()["status"] == "paused", str(shown)
    procctl.ok("agent", "start")

    instance = _resumed(procctl("resume", "-c", "settable-restart", "--json"))
    assert instance["status"] == "completed", instance
    assert instance["result"] == {"n": 1, "double": 2, "word": "a"}
