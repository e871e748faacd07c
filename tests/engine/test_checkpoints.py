"""Checkpoints on the real engine in-process (the harness in tests/engine/harness.py):
what a snapshot stores (only the live variables, with their types), resuming where it
stopped (in a foreach, in an if branch), a correlation ID clash, the checkpoint's result
fields after a resume by `procctl resume` and by a signal file, `continue = true`, the
definition pinned to the instance, and `--set` edits.

Moved from tests/e2e/test_checkpoints.py (same definitions and assertions; a resume
there is a delivery through the signal desk here, with the source `procctl resume` or a
signal file gives it). What stays there: what `run --wait` and `list-paused` print, the
clash's printed error, and a paused instance across a real agent's stop and start.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from engine.harness import Engine, Launch
from helpers import unique_key

#: the source of a `procctl resume` signal (its file name after `cli:`)
BY_CLI = "cli:resume.json"


def resumed(outcome: dict[str, Any]) -> dict[str, Any]:
    """The instance summary after an applied resume."""
    assert outcome["signal"]["status"] == "applied", outcome
    instance: dict[str, Any] = outcome["instance"]
    return instance


def run_paused(engine: Engine, path: Path, *cli: str) -> dict[str, Any]:
    summary = engine.run(path, cli=list(cli))
    assert summary["status"] == "paused", summary
    return summary


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
        engine: Engine, tmp_path: Path) -> None:
    path = engine.write(TYPED)
    blob = tmp_path / "blob.bin"
    blob.write_bytes("héllo".encode())
    key = unique_key()

    # What validate lists under "checkpoints": the live variables and results.
    live = engine.load(path).liveness["wait"]
    assert (sorted(live.variables), live.all_results, sorted(live.results)) == (
        LIVE, False, [])
    summary = run_paused(engine, path, f"key={key}", f"blob_file={blob}")
    shown = engine.show(summary["instance_id"])
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

    # A new engine on the same store: the snapshot is read back, nothing cached.
    engine.restart()
    instance = resumed(engine.resume(f"typed-{key}", {}, source=BY_CLI))
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
        engine: Engine, tmp_path: Path) -> None:
    path = engine.write(LOOP)
    ledger = tmp_path / "ledger.txt"
    key = unique_key()
    summary = run_paused(engine, path, f"key={key}", f"ledger={ledger}")
    instance_id = summary["instance_id"]
    assert summary["correlation_id"] == f"loop-{key}-a"
    assert ledger.read_text() == "before a\n"

    instance = resumed(engine.resume(f"loop-{key}-a", {"answer": 1}, source=BY_CLI))
    assert instance["instance_id"] == instance_id
    assert instance["status"] == "paused" and instance["correlation_id"] == f"loop-{key}-b"
    shown = engine.show(instance_id)
    assert shown["position"] == "steps[0].body[1]"
    assert shown["stored_variables"]["letter"] == "b"
    assert shown["stored_variables"]["i"] == 1
    assert ledger.read_text() == "before a\nafter a\nbefore b\n"

    instance = resumed(engine.resume(f"loop-{key}-b", {"answer": 2}, source=BY_CLI))
    assert instance["status"] == "paused" and instance["correlation_id"] == f"loop-{key}-c"
    instance = resumed(engine.resume(f"loop-{key}-c", {"answer": 3}, source=BY_CLI))
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
        engine: Engine, tmp_path: Path) -> None:
    path = engine.write(BRANCH)
    ledger = tmp_path / "ledger.txt"
    key = unique_key()
    summary = run_paused(engine, path, f"key={key}", f"ledger={ledger}", "amount=500")
    assert engine.show(summary["instance_id"])["position"] == "steps[0].then[1]"
    assert ledger.read_text() == "then before\n"

    instance = resumed(engine.resume(f"branch-{key}", {"by": "ada"}, source=BY_CLI))
    assert instance["status"] == "completed", instance
    assert instance["result"] == "big 500 approved by ada"  # the if step's result
    assert ledger.read_text().splitlines() == ["then before", "then after", "end"]


def test_correlation_id_clash_fails_the_second_instance_naming_the_first(
        engine: Engine) -> None:
    path = engine.write(PAUSING)
    key = unique_key()
    first = run_paused(engine, path, f"key={key}")
    failed = engine.run(path, cli=[f"key={key}"])
    assert failed["status"] == "failed"
    error = failed["error"]
    assert error["step_id"] == "wait"
    assert error["kind"] == "correlation_conflict"
    assert first["instance_id"] in error["message"]
    assert f"pausing-{key}" in error["message"]
    assert failed["checkpoint"] is None and "resume_command" not in failed

    # The first instance kept its checkpoint and still resumes.
    assert engine.summary(first["instance_id"])["checkpoint"]["correlation_id"] == (
        f"pausing-{key}")
    instance = resumed(engine.resume(f"pausing-{key}", {}, source=BY_CLI))
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


def test_checkpoint_result_fields_after_a_resume(engine: Engine) -> None:
    path = engine.write(FIELDS)
    by_cli, by_file = unique_key(), unique_key()
    first, second = engine.run_many(Launch(path, cli=[f"key={by_cli}"]),
                                    Launch(path, cli=[f"key={by_file}"]))
    assert first["status"] == second["status"] == "paused", (first, second)

    manual = resumed(engine.resume(f"fields-{by_cli}", {"answer": "yes", "count": 3},
                                   source=BY_CLI))
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

    # A signal file, read and delivered by the signal desk.
    engine.signal_file({"correlation_id": f"fields-{by_file}", "payload": {"answer": "no"}},
                       name=f"fields-{by_file}.json")
    shown = engine.wait(second["instance_id"], "completed")
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


def test_continue_true_saves_and_goes_on(engine: Engine) -> None:
    path = engine.write(CONTINUE)
    key = unique_key()
    summary = engine.run(path, cli=[f"key={key}"])
    assert summary["status"] == "completed", summary
    checkpoint = summary["result"]["checkpoint"]
    assert summary["result"]["n"] == 20
    assert checkpoint["resumed_by"] is None
    assert checkpoint["iteration"] == 0
    assert checkpoint["payload"] is None
    assert checkpoint["value"] == "saved"
    assert checkpoint["variables"] == {"n": 2}
    assert checkpoint["correlation_id"] == f"continue-{key}"

    shown = engine.show(summary["instance_id"])
    kinds = [event["kind"] for event in shown["history"]]
    assert "checkpoint_saved" in kinds
    assert "instance_paused" not in kinds
    assert shown["checkpoint"] is None  # completed: the snapshot is gone
    assert [s["instance_id"] for s in engine.instances() if s["status"] == "paused"] == []


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


def test_the_definition_is_pinned_to_the_instance(engine: Engine) -> None:
    old_key, new_key = unique_key(), unique_key()
    path = engine.write(PINNED.replace("VERSION", "old definition"))
    old = run_paused(engine, path, f"key={old_key}")
    path.write_text(PINNED.replace("VERSION", "new definition"))
    new = run_paused(engine, path, f"key={new_key}")
    path.unlink()
    engine.restart()  # nothing cached: the texts come from the store

    old_done = resumed(engine.resume(f"pinned-{old_key}", {}, source=BY_CLI))
    new_done = resumed(engine.resume(f"pinned-{new_key}", {}, source=BY_CLI))
    assert old_done["instance_id"] == old["instance_id"]
    assert old_done["result"] == "old definition"
    assert new_done["instance_id"] == new["instance_id"]
    assert new_done["result"] == "new definition"


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


def test_resume_set_changes_a_stored_variable(engine: Engine) -> None:
    path = engine.write(SETTABLE)
    key = unique_key()
    summary = run_paused(engine, path, f"key={key}")
    assert engine.show(summary["instance_id"])["stored_variables"] == {"n": 1, "word": "a"}
    instance = resumed(engine.resume(f"settable-{key}", {}, set_values={"n": 5, "word": "zed"},
                                     source=BY_CLI))
    assert instance["status"] == "completed", instance
    assert instance["result"] == {"n": 5, "double": 10, "word": "zed"}
    history = engine.history(summary["instance_id"])
    applied = [e for e in history if e["kind"] == "signal_applied"]
    assert len(applied) == 1 and applied[0]["data"]["set"] == ["n", "word"]
