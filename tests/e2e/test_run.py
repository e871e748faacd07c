"""`procctl run`: with and without --wait, --json, params and their checks, --no-autostart."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from helpers import Procctl, wait_for

WriteDefinition = Callable[..., Path]

# A process with one param of each interesting type; it returns them as it sees them.
TYPED = """
[process]
name = "typed"

[process.params.count]
type = "int"

[process.params.ratio]
type = "float"
default = 0.5

[process.params.loud]
type = "bool"
default = false

[process.params.tags]
type = "list"
default = []

[process.params.who]
type = "str"
default = "world"

[[steps]]
id = "greet"
task = "log"
with = { message = "Hello, {{ who }}!" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
count = "{{ count }}"
ratio = "{{ ratio }}"
loud = "{{ loud }}"
tags = "{{ tags }}"
who = "{{ who }}"
greeting = "{{ results['greet'] }}"
next = "{{ count + 1 }}"
"""

INSTANCE_ID = re.compile(r"\b[0-9a-f]{12}\b")


def test_run_without_wait_prints_the_id_and_the_instance_completes(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    plain, as_json = shared_procctl.many(("run", path, "-p", "count=1"),
                                         ("run", path, "-p", "count=2", "--json"))
    assert plain.code == 0, str(plain)
    match = INSTANCE_ID.search(plain.out)
    assert match and "typed" in plain.out, str(plain)
    assert as_json.code == 0, str(as_json)
    assert INSTANCE_ID.fullmatch(as_json.json()["instance_id"]), str(as_json)
    ids = [match.group(0), as_json.json()["instance_id"]]
    assert ids[0] != ids[1]

    def both_completed() -> list[dict] | None:
        shown = [r.json() for r in shared_procctl.many(*[("show", i, "--json") for i in ids])]
        return shown if all(s["status"] == "completed" for s in shown) else None

    shown = wait_for(both_completed, message=f"instances {ids} to complete")
    assert [s["instance_id"] for s in shown] == ids
    assert [s["result"]["count"] for s in shown] == [1, 2]
    assert [s["error"] for s in shown] == [None, None]


def test_run_wait_json_prints_the_summary(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    summary = shared_procctl.ok("run", path, "--wait", "--json", "-p", "count=5").json()
    assert {"instance_id", "status", "result", "error"} <= set(summary)
    assert summary["status"] == "completed"
    assert summary["error"] is None
    assert summary["process"] == "typed"
    assert summary["result"] == {"count": 5, "ratio": 0.5, "loud": False, "tags": [],
                                 "who": "world", "greeting": "Hello, world!", "next": 6}


def test_run_wait_prints_progress_and_result(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    result = shared_procctl.ok("run", path, "--wait", "-p", "count=1", "-p", "who=Ada")
    lines = [line.strip() for line in result.out.splitlines()]
    assert re.fullmatch(r"typed instance [0-9a-f]{12}", lines[0]), str(result)
    assert "│ Hello, Ada!" in lines  # the log task's message, as it runs
    assert any(re.fullmatch(r"✓ greet \d+\.\d\ds", line) for line in lines), str(result)
    assert any(re.fullmatch(r"✓ done \d+\.\d\ds", line) for line in lines), str(result)
    assert any(line.startswith("completed in ") for line in lines), str(result)
    assert "Result:" in result.out and '"greeting": "Hello, Ada!"' in result.out


def test_cli_params_are_coerced_to_their_declared_types(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    summary = shared_procctl.ok(
        "run", path, "--wait", "--json",
        "-p", "count=42", "-p", "ratio=2.5", "-p", "loud=yes", "-p", 'tags=["a", 1, true]',
        "-p", "who=x=y",
    ).json()
    result = summary["result"]
    assert result["count"] == 42 and isinstance(result["count"], int)
    assert result["next"] == 43
    assert result["ratio"] == 2.5
    assert result["loud"] is True
    assert result["tags"] == ["a", 1, True]
    assert result["who"] == "x=y"  # only the first '=' separates name and value
    assert summary["params"] == {"count": 42, "ratio": 2.5, "loud": True,
                                 "tags": ["a", 1, True], "who": "x=y"}


def test_params_file_supplies_params_and_p_overrides_it(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(TYPED)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"count": 7, "loud": True, "tags": ["x"], "who": "file"}))
    summary = shared_procctl.ok("run", path, "--wait", "--json", "--params-file", params,
                                "-p", "who=cli").json()
    assert summary["result"]["count"] == 7
    assert summary["result"]["loud"] is True
    assert summary["result"]["tags"] == ["x"]
    assert summary["result"]["who"] == "cli"


def test_params_file_with_a_wrong_type_is_refused(
        procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(TYPED)
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"count": "seven"}))
    result = procctl("run", path, "--params-file", params)
    assert result.code == 2, str(result)
    assert "count" in result.err and "int" in result.err
    assert not procctl.home.exists(), "a refused run must not create the home or start an agent"


def test_missing_required_param_is_refused_before_anything_runs(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    result = procctl("run", path, "--wait")
    assert result.code == 2, str(result)
    assert "needs param 'count'" in result.err
    assert "-p count=" in result.err  # the hint says how to pass it
    listed, status = procctl.many(("list", "--json"), ("agent", "status"))
    assert listed.code == 0 and listed.json() == [], str(listed)
    assert status.code == 4, str(status)
    assert not (procctl.home / "agent.sock").exists()


def test_param_of_the_wrong_type_is_refused(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    bad = ("count=many", "loud=perhaps", 'tags={"not": "a list"}')
    results = procctl.many(*[("run", path, "-p", "count=1", "-p", b) for b in bad])
    for value, result in zip(bad, results, strict=True):
        assert result.code == 2, str(result)
        name = value.split("=")[0]
        assert f"param {name!r} must be" in result.err, str(result)
    assert not procctl.home.exists(), "a refused run must not create the home or start an agent"


def test_unknown_param_suggests_the_close_one(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    result = procctl("run", path, "-p", "count=1", "-p", "rato=3")
    assert result.code == 2, str(result)
    assert "no param 'rato'" in result.err
    assert "did you mean 'ratio'?" in result.err
    assert not procctl.home.exists(), "a refused run must not create the home or start an agent"


def test_param_values_are_data_never_templates(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    summary = shared_procctl.ok("run", path, "--wait", "--json", "-p", "count=1",
                                "-p", "who={{ 7*7 }}", "-p", 'tags=["{{ 6*7 }}"]').json()
    assert summary["status"] == "completed"
    assert summary["result"]["who"] == "{{ 7*7 }}"
    assert summary["result"]["greeting"] == "Hello, {{ 7*7 }}!"
    assert summary["result"]["tags"] == ["{{ 6*7 }}"]
    assert "49" not in json.dumps(summary["result"])
    assert "42" not in json.dumps(summary["result"])


def test_no_autostart_without_an_agent_fails_with_exit_4(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(TYPED)
    result = procctl("run", path, "--no-autostart", "-p", "count=1")
    assert result.code == 4, str(result)
    assert "no agent is running" in result.err
    assert "procctl agent start" in result.err
    assert not (procctl.home / "agent.sock").exists()
    assert procctl.agent_pid() is None, "--no-autostart must not start an agent"
