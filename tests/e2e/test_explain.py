"""`procctl explain ID` through the real command and agent: a paused, a failed and a
running instance, with the agent running and stopped, on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from helpers import Procctl, run_paused, unique_key, wait_for, wait_settled

APPROVAL = """
[process]
name = "explain-approval-{key}"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "approval-{key}"
ttl = "7d"
expects = {{ approved = "bool", by = "str" }}

[[steps]]
id = "done"
kind = "return"
value = {{ ok = "{{{{ results['wait'].payload.approved }}}}" }}
"""

FAILING = """
[process]
name = "explain-failing"

[[steps]]
id = "boom"
kind = "throw"
message = "the vendor said no"
"""

SLEEPY = """
[process]
name = "explain-sleepy"

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = 60 }
"""


def at(width: int) -> dict[str, str]:
    return {"COLUMNS": str(width)}


def test_a_paused_instance_at_80_columns_and_its_resume_line_works(
        shared_procctl: Procctl, tmp_path: Path) -> None:
    key = unique_key()
    path = tmp_path / "approval.toml"
    path.write_text(APPROVAL.format(key=key))
    instance_id = run_paused(shared_procctl, path)["instance_id"]

    shown = shared_procctl.ok("explain", instance_id, env=at(80)).out.splitlines()
    assert all(len(line) <= 80 and line == line.rstrip() for line in shown), shown
    assert shown[0] == f"Instance    {instance_id} (explain-approval-{key}): paused at wait"
    assert shown[1] == f"Why         it waits for a signal to correlation ID approval-{key}"
    assert "Expects     approved (bool), by (str)" in shown
    assert any(line.startswith("Expires     ") and "(in 6d 23h)" in line for line in shown)
    assert "At expiry   it fails (error kind expired) and its snapshot is discarded" in shown

    explained = shared_procctl.ok("explain", instance_id, "--json").json()
    assert (explained["status"], explained["waits_for"]) == ("paused", "signal")
    assert explained["expects"] == [
        {"name": "approved", "type": "bool", "optional": False, "declared": True},
        {"name": "by", "type": "str", "optional": False, "declared": True}]
    line = explained["commands"][0]["command"]
    assert line == (f"procctl resume --correlation-id approval-{key} "
                    "--data approved=true --data by=TEXT")
    assert line == explained["resume_line"]
    assert explained["signals_directory"] == str(shared_procctl.home / "signals")

    # a signal file to a correlation ID one character off: held for no one, listed
    signals = shared_procctl.home / "signals"
    (signals / f"typo-{key}.tmp").write_text(json.dumps(
        {"correlation_id": f"approval-{key}x", "payload": {"approved": True}}))
    (signals / f"typo-{key}.tmp").rename(signals / f"typo-{key}.json")
    wait_for(lambda: not (signals / f"typo-{key}.json").exists(),
             message="the agent to read the signal file")
    noted = shared_procctl.ok("explain", instance_id, "--json").json()["signals"]
    assert [(s["correlation_id"], s["status"], s["near"]) for s in noted] == [
        (f"approval-{key}x", "pending", True)]
    shown = shared_procctl.ok("explain", instance_id, env=at(80)).out.splitlines()
    assert "Signals     1 not applied:" in shown
    assert (f"held to approval-{key}x (a typo?) from file:typo-{key}.json"
            in " ".join(" ".join(shown).split())), shown

    # the line, pasted as it is, resumes it
    shared_procctl.ok(*shlex.split(line)[1:])
    done = wait_settled(shared_procctl, instance_id, "completed")
    assert done["result"] == {"ok": True}
    after = shared_procctl.ok("explain", instance_id, "--json").json()
    assert (after["status"], after["waits_for"]) == ("completed", "nothing")
    assert [c["command"] for c in after["commands"]] == [f"procctl show {instance_id}"]


def test_unknown_id_exits_5(shared_procctl: Procctl) -> None:
    result = shared_procctl("explain", "ffffffffffff")
    assert result.code == 5, str(result)
    assert result.err.startswith("Error: no instance 'ffffffffffff'"), str(result)
    assert result.out == ""


# The examples of docs/cli.md's explain section are this home's output (see
# test_with_the_agent_down_failed_and_running_instances).
DOC_APPROVAL = """
[process]
name = "approval"

[process.params.order]
type = "str"
default = "A-17"

[[steps]]
id = "wait-for-answer"
kind = "checkpoint"
correlation_id = "approval-{{ order }}"
ttl = "7d"
expects = { approved = "bool", by = "str", note = "str?" }

[[steps]]
id = "done"
kind = "return"
value = { approved = "{{ results['wait-for-answer'].payload.approved }}" }
"""

DOC_FAILING = """
[process]
name = "invoice"

[[steps]]
id = "charge"
kind = "throw"
message = "the card was declined"
"""

CLI_MD = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_EXAMPLE = re.compile(r"<!-- output: explain (?P<name>[a-z]+) -->\n```\n(?P<body>.*?)```",
                      re.DOTALL)
_MASKS = ((re.compile(r"^Signal dir  .*$", re.MULTILINE), "Signal dir  DIR"),
          (re.compile(r"\b[0-9a-f]{12}\b"), "ID"),
          (re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"), "TIME"),
          (re.compile(r"\((in )?[0-9][0-9a-z. ]*?( ago)?\)"), "(WHEN)"))


def masked(text: str) -> str:
    """Output with what changes from run to run (IDs, times, the home) masked."""
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def doc_examples() -> dict[str, str]:
    return {m["name"]: m["body"] for m in _EXAMPLE.finditer(CLI_MD.read_text())}


def test_with_the_agent_down_failed_and_running_instances(tmp_path: Path) -> None:
    procctl = Procctl(tmp_path / "home")
    (tmp_path / "failing.toml").write_text(FAILING)
    (tmp_path / "sleepy.toml").write_text(SLEEPY)
    (tmp_path / "approval.toml").write_text(DOC_APPROVAL)
    (tmp_path / "invoice.toml").write_text(DOC_FAILING)
    try:
        procctl.ok("config", "set", "shutdown_grace", "0s")
        failed = procctl("run", tmp_path / "failing.toml", "--wait", "--json").json()
        assert failed["status"] == "failed"
        sleepy = procctl.ok("run", tmp_path / "sleepy.toml", "--json").json()["instance_id"]
        paused = run_paused(procctl, tmp_path / "approval.toml")["instance_id"]
        invoice = procctl("run", tmp_path / "invoice.toml", "--wait", "--json").json()
        signals = procctl.home / "signals"
        (signals / "answer.tmp").write_text(json.dumps(
            {"correlation_id": "approval-A-71", "payload": {"approved": True}}))
        (signals / "answer.tmp").rename(signals / "answer.json")
        wait_for(lambda: not (signals / "answer.json").exists(),
                 message="the agent to read the signal file")
        wait_for(lambda: procctl.ok("explain", sleepy, "--json").json()["running_step"],
                 message="the sleep step to start")
        running = procctl.ok("explain", sleepy, "--json").json()
        agent_id = (procctl.home / "agent.id").read_text().strip()
        assert running["waits_for"] == "agent"
        assert running["running_step"] == {"step_id": "nap", "kind": "task"}
        assert (running["owner"]["agent_id"], running["owner"]["state"]) == (agent_id,
                                                                             "alive")
        assert running["reason"].startswith(f"it runs step nap (task) on agent {agent_id}")
    finally:
        procctl.stop_agent()

    assert not (procctl.home / "agent.sock").exists()
    # read from the store: no agent is started for it
    shown = procctl.ok("explain", failed["instance_id"], env=at(80))
    assert "Starting the agent" not in shown.err
    lines = shown.out.splitlines()
    assert all(len(line) <= 80 for line in lines), lines
    assert lines[1] == "Why         it failed at step boom (thrown): the vendor said no"
    assert lines[2].startswith("Ended       ")
    assert any(line.startswith(f"Move it on  procctl retry {failed['instance_id']}")
               for line in lines), lines
    stopped = procctl.ok("explain", sleepy, "--json").json()
    assert stopped["owner"]["state"] == "stopped"
    assert "stopped while it ran step nap" in stopped["reason"]
    assert stopped["commands"][0]["command"] == "procctl agent start"
    assert not (procctl.home / "agent.sock").exists()

    # docs/cli.md shows this output (IDs, times and the home masked)
    real = {name: procctl.ok("explain", instance, env=at(80)).out
            for name, instance in (("paused", paused), ("failed", invoice["instance_id"]))}
    assert {name: masked(text) for name, text in doc_examples().items()} == {
        name: masked(text) for name, text in real.items()}, "\n".join(real.values())


@pytest.mark.postgres
def test_on_postgresql_it_names_the_agent_and_its_lease(tmp_path: Path, pg_url: str) -> None:
    procctl = Procctl(tmp_path / "home")
    procctl.env["PROCCTL_STORE_URL"] = pg_url
    (tmp_path / "sleepy.toml").write_text(SLEEPY)
    (tmp_path / "approval.toml").write_text(DOC_APPROVAL)
    try:
        procctl.ok("config", "set", "shutdown_grace", "0s")
        paused = run_paused(procctl, tmp_path / "approval.toml")["instance_id"]
        sleepy = procctl.ok("run", tmp_path / "sleepy.toml", "--json").json()["instance_id"]
        wait_for(lambda: procctl.ok("explain", sleepy, "--json").json()["running_step"],
                 message="the sleep step to start")
        running = procctl.ok("explain", sleepy, "--json").json()
        agent_id = (procctl.home / "agent.id").read_text().strip()
        assert (running["owner"]["agent_id"], running["owner"]["state"]) == (agent_id,
                                                                             "alive")
        assert running["owner"]["lease_until"]
        text = procctl.ok("explain", sleepy, env=at(80)).out.splitlines()
        assert any(line.startswith(f"Agent       {agent_id} on ") and ": alive, lease until"
                   in line for line in text), text
    finally:
        procctl.stop_agent()
    stopped = procctl.ok("explain", sleepy, "--json").json()
    assert stopped["owner"]["state"] == "stopped"
    assert "another live agent takes it over" in stopped["reason"]
    # a paused one, from the server, with no agent
    waiting = procctl.ok("explain", paused, "--json").json()
    assert (waiting["waits_for"], waiting["correlation_id"]) == ("signal", "approval-A-17")
    assert [f["name"] for f in waiting["expects"]] == ["approved", "by", "note"]
    assert waiting["resume_line"] == ("procctl resume --correlation-id approval-A-17 "
                                      "--data approved=true --data by=TEXT")
