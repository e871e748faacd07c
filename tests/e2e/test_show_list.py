"""`procctl show` and `procctl list`, as tables and as JSON, read from the store."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from helpers import Procctl

ALPHA = """
[process]
name = "alpha"
version = "2"
[process.params.n]
type = "int"
default = 1

[[steps]]
id = "greet"
task = "log"
with = { message = "alpha says {{ n }}" }

[[steps]]
id = "double"
kind = "set"
values = { twice = "{{ n * 2 }}" }

[[steps]]
id = "done"
kind = "return"
value = { twice = "{{ twice }}" }
"""

BETA = """
[process]
name = "beta"

[[steps]]
id = "start"
task = "log"
with = { message = "beta starts" }

[[steps]]
id = "explode"
kind = "throw"
message = "beta always fails"
"""


@pytest.fixture(scope="module")
def populated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A home with three finished instances (alpha n=1, beta failed, alpha n=5), oldest
    first; the agent is stopped afterwards, since show and list read the store directly."""
    folder = tmp_path_factory.mktemp("populated")
    (folder / "alpha.toml").write_text(ALPHA)
    (folder / "beta.toml").write_text(BETA)
    procctl = Procctl(folder / "home")
    try:
        first = procctl.ok("run", folder / "alpha.toml", "--wait", "--json").json()
        failed = procctl("run", folder / "beta.toml", "--wait", "--json")
        assert failed.code == 1, str(failed)
        last = procctl.ok("run", folder / "alpha.toml", "--wait", "--json", "-p", "n=5").json()
    finally:
        procctl.stop_agent()
    assert not (procctl.home / "agent.sock").exists()

    return SimpleNamespace(runner=procctl, alpha1=first, beta=failed.json(), alpha5=last)


def test_list_json_shows_every_instance_newest_first(populated: Any) -> None:
    rows = populated.runner.ok("list", "--json").json()
    ids = [row["instance_id"] for row in rows]
    assert ids == [populated.alpha5["instance_id"], populated.beta["instance_id"],
                   populated.alpha1["instance_id"]]
    by_id = {row["instance_id"]: row for row in rows}
    alpha5 = by_id[populated.alpha5["instance_id"]]
    assert alpha5["process"] == "alpha"
    assert alpha5["version"] == "2"
    assert alpha5["status"] == "completed"
    assert alpha5["params"] == {"n": 5}
    assert alpha5["result"] == {"twice": 10}
    assert alpha5["started_at"] and alpha5["ended_at"]
    beta = by_id[populated.beta["instance_id"]]
    assert beta["status"] == "failed"
    assert beta["error"]["message"] == "beta always fails"


def test_list_filters_by_status_and_process(populated: Any) -> None:
    filters = [("--status", "failed"), ("--status", "completed"), ("--process", "beta"),
               ("--process", "alpha", "--status", "failed"), ("--limit", "1")]
    *results, unknown = populated.runner.many(*[("list", "--json", *f) for f in filters],
                                              ("list", "--status", "finished"))
    for result in results:
        assert result.code == 0, str(result)
    found = [[row["instance_id"] for row in result.json()] for result in results]
    alpha1, beta, alpha5 = (populated.alpha1["instance_id"], populated.beta["instance_id"],
                            populated.alpha5["instance_id"])
    assert found == [
        [beta],  # --status failed
        [alpha5, alpha1],  # --status completed
        [beta],  # --process beta
        [],  # --process alpha --status failed
        [alpha5],  # --limit 1: the newest
    ]
    # A status that does not exist is a usage error that names the valid ones.
    assert unknown.code == 2, str(unknown)
    assert "finished" in unknown.err and "completed" in unknown.err


def test_list_table_has_one_row_per_instance(populated: Any) -> None:
    out = populated.runner.ok("list").out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["INSTANCE", "PROCESS", "STATUS"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.strip()}
    assert rows.keys() == {populated.alpha1["instance_id"], populated.beta["instance_id"],
                           populated.alpha5["instance_id"]}
    assert rows[populated.beta["instance_id"]][1:3] == ["beta", "failed"]
    assert rows[populated.alpha5["instance_id"]][1:3] == ["alpha", "completed"]


def test_list_and_show_in_an_empty_home(procctl: Procctl) -> None:
    as_json, table, shown = procctl.many(("list", "--json"), ("list",),
                                         ("show", "feedfacecafe", "--json"))
    assert as_json.code == 0 and as_json.json() == [], str(as_json)
    assert table.code == 0 and f"No procctl home at {procctl.home}" in table.out, str(table)
    assert shown.code == 5, str(shown)
    assert "no store" in shown.err and shown.out == "", str(shown)
    assert not procctl.home.exists(), "reading must not create a home"


def test_show_json_has_the_summary_and_the_step_history(populated: Any) -> None:
    instance_id = populated.alpha5["instance_id"]
    shown = populated.runner.ok("show", instance_id, "--json").json()
    assert shown["instance_id"] == instance_id
    assert shown["status"] == "completed"
    assert shown["params"] == {"n": 5}
    assert shown["result"] == {"twice": 10}
    assert shown["error"] is None
    steps = [(e["kind"], e["step_id"]) for e in shown["history"]
             if e["kind"].startswith("step_")]
    assert steps == [("step_started", "greet"), ("step_finished", "greet"),
                     ("step_started", "double"), ("step_finished", "double"),
                     ("step_started", "done"), ("step_finished", "done")]
    kinds = [e["kind"] for e in shown["history"]]
    assert kinds[0] == "instance_started"
    assert kinds[-1] == "instance_completed"
    log = next(e for e in shown["history"] if e["kind"] == "log")
    assert log["step_id"] == "greet"
    assert log["step_path"] == "steps[0]"
    assert log["data"]["message"] == "alpha says 5"
    assert all(e["at"] for e in shown["history"])
    times = [e["at"] for e in shown["history"]]
    assert times == sorted(times)


def test_show_json_of_a_failed_instance_has_the_error_and_the_failed_step(
        populated: Any) -> None:
    shown = populated.runner.ok("show", populated.beta["instance_id"], "--json").json()
    assert shown["status"] == "failed"
    assert shown["error"]["message"] == "beta always fails"
    assert shown["error"]["step_id"] == "explode"
    failed = [e for e in shown["history"] if e["kind"] == "step_failed"]
    assert [(e["step_id"], e["data"]["message"]) for e in failed] == [
        ("explode", "beta always fails")]
    assert shown["history"][-1]["kind"] == "instance_failed"


def test_show_table(populated: Any) -> None:
    instance_id = populated.beta["instance_id"]
    out = populated.runner.ok("show", instance_id).out
    assert instance_id in out
    assert "beta" in out
    assert "failed" in out
    assert "beta always fails" in out and "explode" in out
    assert "History" in out
    for event in ("instance_started", "step_started", "log", "step_failed", "instance_failed"):
        assert event in out, event
    assert "beta starts" in out  # the log message is shown as the event's detail


def test_show_finds_an_id_or_unique_prefix_and_refuses_unknown_ids(populated: Any) -> None:
    instance_id = populated.alpha1["instance_id"]
    others = {populated.beta["instance_id"], populated.alpha5["instance_id"]}
    prefix = next(instance_id[:n] for n in range(4, 13)
                  if not any(other.startswith(instance_id[:n]) for other in others))
    by_prefix, unknown = populated.runner.many(("show", prefix, "--json"),
                                               ("show", "feedfacecafe"))
    assert by_prefix.code == 0, str(by_prefix)
    assert by_prefix.json()["instance_id"] == instance_id
    assert by_prefix.json()["result"] == {"twice": 2}
    assert unknown.code == 5, str(unknown)
    assert "no instance 'feedfacecafe'" in unknown.err
    assert "procctl list" in unknown.err  # the hint says where to look
    assert unknown.out == ""
