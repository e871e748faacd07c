"""Checkpoints end to end: pausing, what a snapshot stores, resuming where it stopped.

Most tests share the session's agent (each uses its own correlation IDs and reads only
its own instances); the ones that stop or restart an agent get a home of their own.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from helpers import Procctl, Result, run_paused, show_json, unique_key, wait_for

from procctl.store import Store

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


# Variables of every type a process can make; only some are read after the checkpoint.
TYPED = """
[process]
name = "typed-snapshot"

[process.params.key]
type = "str"

[process.params.blob_file]
type = "str"

[[steps]]
id = "read-blob"
task = "file.read"
with = { path = "{{ blob_file }}", format = "bytes" }

[[steps]]
id = "setup"
kind = "set"

[steps.values]
stamp = "{{ now() }}"
day = "{{ today() }}"
count = 7
ratio = 0.25
flag = true
nothing = "{{ none }}"
words = ["a", "b"]
info = { k = "v", n = 1 }
blob = "{{ results['read-blob'] }}"
scratch = "only read before the checkpoint"

[[steps]]
id = "use-scratch"
task = "log"
with = { message = "{{ scratch }}" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "typed-{{ key }}"

[[steps]]
id = "done"
kind = "return"

[steps.value]
stamp = "{{ stamp.isoformat() }}"
year = "{{ stamp.year }}"
aware = "{{ stamp.tzinfo is not none }}"
day = "{{ day.isoformat() }}"
day_year = "{{ day.year }}"
count = "{{ count + 1 }}"
ratio = "{{ ratio * 4 }}"
flag = "{{ flag is sameas true }}"
nothing = "{{ nothing is none }}"
words = "{{ words + ['c'] }}"
info = "{{ info.k ~ info.n }}"
blob = "{{ blob.decode('utf-8') }}"
blob_len = "{{ blob | length }}"
"""

LIVE = ["blob", "count", "day", "flag", "info", "nothing", "ratio", "stamp", "words"]


def test_snapshot_stores_only_live_variables_with_their_types(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(TYPED)
    blob = tmp_path / "blob.bin"
    blob.write_bytes("héllo".encode())
    key = unique_key()

    validated, run = shared_procctl.many(
        ("validate", path, "--json"),
        ("run", path, "--wait", "--json", "-p", f"key={key}", "-p", f"blob_file={blob}"))
    assert validated.code == 0, str(validated)
    assert validated.json()["checkpoints"] == {"wait": {"variables": LIVE, "results": []}}
    assert run.code == 0 and run.json()["status"] == "paused", str(run)
    summary = run.json()
    shown = show_json(shared_procctl, summary["instance_id"])
    stored = shown["stored_variables"]
    # `scratch`, the params and the file step's result are not read after the pause.
    assert sorted(stored) == LIVE
    assert "scratch" not in stored and "key" not in stored
    assert stored["count"] == 7 and stored["ratio"] == 0.25 and stored["flag"] is True
    assert stored["nothing"] is None
    assert stored["words"] == ["a", "b"] and stored["info"] == {"k": "v", "n": 1}
    stamp = datetime.fromisoformat(stored["stamp"])
    assert abs(datetime.now(stamp.tzinfo) - stamp) < timedelta(minutes=5)
    assert stored["day"] == stamp.date().isoformat()

    instance = _resumed(shared_procctl("resume", "-c", f"typed-{key}", "--json"))
    assert instance["status"] == "completed", instance
    # Methods of datetime, date and bytes still work after the resume: the types survived.
    assert instance["result"] == {
        "stamp": stored["stamp"], "year": stamp.year, "aware": True,
        "day": stored["day"], "day_year": stamp.year,
        "count": 8, "ratio": 1.0, "flag": True, "nothing": True,
        "words": ["a", "b", "c"], "info": "v1", "blob": "héllo", "blob_len": 6,
    }


# A checkpoint inside a loop body: one pause per item.
LOOP = """
[process]
name = "loop-pause"

[process.params.key]
type = "str"

[process.params.ledger]
type = "str"

[[steps]]
id = "each"
kind = "foreach"
items = "{{ ['a', 'b', 'c'] }}"
as = "letter"
index_as = "i"

[[steps.body]]
id = "before"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "before {{ letter }}\\n" }

[[steps.body]]
id = "ask"
kind = "checkpoint"
correlation_id = "loop-{{ key }}-{{ letter }}"

[[steps.body]]
id = "after"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "after {{ letter }}\\n" }

[[steps.body]]
id = "answer"
task = "log"
with = { message = "{{ i }}:{{ letter }}={{ results['ask'].payload.answer }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
"""


def test_checkpoint_in_foreach_resumes_at_the_same_item(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(LOOP)
    ledger = tmp_path / "ledger.txt"
    key = unique_key()
    summary = run_paused(shared_procctl, path, "-p", f"key={key}", "-p", f"ledger={ledger}")
    instance_id = summary["instance_id"]
    assert summary["correlation_id"] == f"loop-{key}-a"
    assert ledger.read_text() == "before a\n"

    instance = _resumed(shared_procctl("resume", "-c", f"loop-{key}-a", "-d", "answer=1",
                                       "--json"))
    assert instance["instance_id"] == instance_id
    assert instance["status"] == "paused" and instance["correlation_id"] == f"loop-{key}-b"
    shown = show_json(shared_procctl, instance_id)
    assert shown["position"] == "steps[0].body[1]"
    assert shown["stored_variables"]["letter"] == "b"
    assert shown["stored_variables"]["i"] == 1
    assert ledger.read_text() == "before a\nafter a\nbefore b\n"

    instance = _resumed(shared_procctl("resume", "-c", f"loop-{key}-b", "-d", "answer=2",
                                       "--json"))
    assert instance["status"] == "paused" and instance["correlation_id"] == f"loop-{key}-c"
    instance = _resumed(shared_procctl("resume", "-c", f"loop-{key}-c", "-d", "answer=3",
                                       "--json"))
    assert instance["status"] == "completed", instance
    # The earlier iterations' results came through both pauses, complete and in order.
    assert instance["result"] == ["0:a=1", "1:b=2", "2:c=3"]
    # Each item's body ran once: nothing was repeated by a resume.
    assert ledger.read_text().splitlines() == [
        "before a", "after a", "before b", "after b", "before c", "after c"]


BRANCH = """
[process]
name = "branch-pause"

[process.params.key]
type = "str"

[process.params.ledger]
type = "str"

[process.params.amount]
type = "int"

[[steps]]
id = "route"
kind = "if"
condition = "amount > 100"

[[steps.then]]
id = "big-before"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "then before\\n" }

[[steps.then]]
id = "big-wait"
kind = "checkpoint"
correlation_id = "branch-{{ key }}"

[[steps.then]]
id = "big-after"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "then after\\n" }

[[steps.then]]
id = "big-done"
task = "log"
with = { message = "big {{ amount }} approved by {{ results['big-wait'].payload.by }}" }

[[steps.else]]
id = "small"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "else\\n" }

[[steps]]
id = "end"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "end\\n" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['route'] }}"
"""


def test_checkpoint_in_an_if_branch_resumes_inside_that_branch(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(BRANCH)
    ledger = tmp_path / "ledger.txt"
    key = unique_key()
    summary = run_paused(shared_procctl, path, "-p", f"key={key}", "-p", f"ledger={ledger}",
                      "-p", "amount=500")
    assert show_json(shared_procctl, summary["instance_id"])["position"] == "steps[0].then[1]"
    assert ledger.read_text() == "then before\n"

    instance = _resumed(shared_procctl("resume", "-c", f"branch-{key}", "-d", "by=ada",
                                       "--json"))
    assert instance["status"] == "completed", instance
    assert instance["result"] == "big 500 approved by ada"  # the if step's result
    assert ledger.read_text().splitlines() == ["then before", "then after", "end"]


def test_correlation_id_clash_fails_the_second_instance_naming_the_first(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(PAUSING)
    key = unique_key()
    first = run_paused(shared_procctl, path, "-p", f"key={key}")
    second, text = shared_procctl.many(("run", path, "--wait", "--json", "-p", f"key={key}"),
                                       ("run", path, "--wait", "-p", f"key={key}"))
    assert second.code == 1, str(second)
    failed = second.json()
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error["step_id"] == "wait"
    assert error["kind"] == "correlation_conflict"
    assert first["instance_id"] in error["message"]
    assert f"pausing-{key}" in error["message"]
    assert failed["checkpoint"] is None and "resume_command" not in failed

    assert text.code == 1, str(text)
    assert first["instance_id"] in text.err and "already held" in text.err

    # The first instance kept its checkpoint and still resumes.
    holders = [r for r in _paused_rows(shared_procctl).values()
               if r["correlation_id"] == f"pausing-{key}"]
    assert [r["instance_id"] for r in holders] == [first["instance_id"]]
    instance = _resumed(shared_procctl("resume", "-c", f"pausing-{key}", "--json"))
    assert instance["instance_id"] == first["instance_id"]
    assert instance["status"] == "completed" and instance["result"] == 42


FIELDS = """
[process]
name = "fields"

[process.params.key]
type = "str"

[[steps]]
id = "setup"
kind = "set"
values = { color = "blue" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "fields-{{ key }}"
ttl = "1h"

[[steps.commit]]
id = "note"
task = "log"
with = { message = "committed {{ key }}" }

[[steps.commit]]
id = "give"
kind = "return"
value = { ticket = "T-{{ key }}", color = "{{ color }}" }

[[steps]]
id = "done"
kind = "return"
value = { checkpoint = "{{ results['wait'] }}", color = "{{ color }}" }
"""


def test_checkpoint_result_fields_after_a_resume(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(FIELDS)
    by_cli, by_file = unique_key(), unique_key()
    runs = shared_procctl.many(("run", path, "--wait", "--json", "-p", f"key={by_cli}"),
                               ("run", path, "--wait", "--json", "-p", f"key={by_file}"))
    first, second = (run.json() for run in runs)
    assert first["status"] == second["status"] == "paused", runs

    manual = _resumed(shared_procctl("resume", "-c", f"fields-{by_cli}", "-d", "answer=yes",
                                     "-d", "count=3", "--json"))
    assert manual["status"] == "completed", manual
    assert manual["result"] == {"color": "blue", "checkpoint": {
        "hydration_point": "wait",
        "correlation_id": f"fields-{by_cli}",
        "trigger_id": "cli",
        "variables": {"color": "blue"},
        "original_start_utc": first["started_at"],
        "iteration": 1,
        "resumed_by": "manual",
        "payload": {"answer": "yes", "count": 3},
        "value": {"ticket": f"T-{by_cli}", "color": "blue"},  # the commit block's return
    }}

    signals = shared_procctl.home / "signals"
    tmp = signals / f"fields-{by_file}.tmp"
    tmp.write_text(json.dumps({"correlation_id": f"fields-{by_file}",
                               "payload": {"answer": "no"}}))
    os.rename(tmp, signals / f"fields-{by_file}.json")

    def completed() -> bool:
        store = Store(shared_procctl.home / "procctl.db", must_exist=True)
        try:
            return store.get_instance(second["instance_id"]).status == "completed"
        finally:
            store.close()

    wait_for(completed, message="the signal file to resume the instance")
    shown = show_json(shared_procctl, second["instance_id"])
    checkpoint = shown["result"]["checkpoint"]
    assert checkpoint["resumed_by"] == "signal"
    assert checkpoint["payload"] == {"answer": "no"}
    assert checkpoint["iteration"] == 1
    assert checkpoint["original_start_utc"] == second["started_at"]
    assert checkpoint["value"] == {"ticket": f"T-{by_file}", "color": "blue"}


CONTINUE = """
[process]
name = "continue-on"

[process.params.key]
type = "str"

[[steps]]
id = "setup"
kind = "set"
values = { n = 2 }

[[steps]]
id = "save"
kind = "checkpoint"
correlation_id = "continue-{{ key }}"
continue = true

[[steps.commit]]
id = "saved"
kind = "return"
value = "saved"

[[steps]]
id = "more"
kind = "set"
values = { n = "{{ n * 10 }}" }

[[steps]]
id = "done"
kind = "return"
value = { n = "{{ n }}", checkpoint = "{{ results['save'] }}" }
"""


def test_continue_true_saves_and_goes_on(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(CONTINUE)
    key = unique_key()
    result = shared_procctl.ok("run", path, "--wait", "--json", "-p", f"key={key}")
    summary = result.json()
    assert summary["status"] == "completed", summary
    checkpoint = summary["result"]["checkpoint"]
    assert summary["result"]["n"] == 20
    assert checkpoint["resumed_by"] is None
    assert checkpoint["iteration"] == 0
    assert checkpoint["payload"] is None
    assert checkpoint["value"] == "saved"
    assert checkpoint["variables"] == {"n": 2}
    assert checkpoint["correlation_id"] == f"continue-{key}"

    shown, rows = shared_procctl.many(("show", summary["instance_id"], "--json"),
                                      ("list-paused", "--json"))
    kinds = [event["kind"] for event in shown.json()["history"]]
    assert "checkpoint_saved" in kinds
    assert "instance_paused" not in kinds
    assert shown.json()["checkpoint"] is None  # completed: the snapshot is gone
    assert summary["instance_id"] not in [row["instance_id"] for row in rows.json()]


PINNED = """
[process]
name = "pinned"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "pinned-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = "VERSION"
"""


def test_the_definition_is_pinned_to_the_instance(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    old_key, new_key = unique_key(), unique_key()
    path = write_definition(PINNED.replace("VERSION", "old definition"))
    old = run_paused(shared_procctl, path, "-p", f"key={old_key}")
    path.write_text(PINNED.replace("VERSION", "new definition"))
    new = run_paused(shared_procctl, path, "-p", f"key={new_key}")
    path.unlink()

    old_done, new_done = shared_procctl.many(
        ("resume", "-c", f"pinned-{old_key}", "--json"),
        ("resume", "-c", f"pinned-{new_key}", "--json"))
    assert _resumed(old_done)["instance_id"] == old["instance_id"]
    assert _resumed(old_done)["result"] == "old definition"
    assert _resumed(new_done)["instance_id"] == new["instance_id"]
    assert _resumed(new_done)["result"] == "new definition"


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


def test_resume_set_changes_a_stored_variable(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SETTABLE)
    key = unique_key()
    summary = run_paused(shared_procctl, path, "-p", f"key={key}")
    assert show_json(shared_procctl, summary["instance_id"])["stored_variables"] == {
        "n": 1, "word": "a"}
    instance = _resumed(shared_procctl("resume", "-c", f"settable-{key}", "--set", "n=5",
                                       "--set", "word=zed", "--json"))
    assert instance["status"] == "completed", instance
    assert instance["result"] == {"n": 5, "double": 10, "word": "zed"}
    history = show_json(shared_procctl, summary["instance_id"])["history"]
    applied = [e for e in history if e["kind"] == "signal_applied"]
    assert len(applied) == 1 and applied[0]["data"]["set"] == ["n", "word"]


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
