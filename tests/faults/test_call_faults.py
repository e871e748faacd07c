"""A parent waiting for its child across pauses and agent deaths.

While a called child is paused, its parent pauses at the call (correlation ID
`call:<child id>`), so the wait holds no memory and survives SIGKILL: when the child
ends, the parent is resumed, by a signal or, when the agent died in between, by the
next agent at start.
"""

from __future__ import annotations

from pathlib import Path

from faults.kit import Agents, events, wait_status
from helpers import Procctl, instance_state, show_json, unique_key, wait_for

LEAF = """
[process]
name = "leaf"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "leaf-{{ key }}"

[[steps]]
id = "answer"
kind = "return"
value = { key = "{{ key }}", by = "{{ results['wait'].payload.by }}" }
"""

MIDDLE = """
[process]
name = "middle"
[process.params.key]
type = "str"

[[steps]]
id = "ask-leaf"
kind = "call"
file = "leaf.toml"
params = { key = "{{ key }}" }

[[steps]]
id = "wrap"
kind = "return"
value = { leaf = "{{ results['ask-leaf'] }}" }
"""

PARENT = """
[process]
name = "top"
[process.params.key]
type = "str"

[[steps]]
id = "before"
task = "log"
with = { message = "before the call" }

[[steps]]
id = "ask"
kind = "call"
file = "CHILD"
params = { key = "{{ key }}" }

[[steps]]
id = "after"
task = "log"
with = { message = "after the call" }

[[steps]]
id = "done"
kind = "return"
value = { got = "{{ results['ask'] }}" }
"""


def _write(tmp_path: Path, child: str) -> Path:
    (tmp_path / "leaf.toml").write_text(LEAF)
    (tmp_path / "middle.toml").write_text(MIDDLE)
    parent = tmp_path / "top.toml"
    parent.write_text(PARENT.replace("CHILD", child))
    return parent


def _logged(home: Path, instance_id: str) -> list[str]:
    return [e["data"]["message"] for e in events(home, instance_id, "log")]


def _children(procctl: Procctl, parent_id: str) -> list[dict[str, object]]:
    listed = procctl.ok("list", "--json").json()
    return [i for i in listed if i.get("parent_id") == parent_id]


def test_a_parent_paused_at_a_call_survives_sigkill_and_goes_on_when_the_child_ends(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    parent_file = _write(tmp_path, "leaf.toml")
    key = unique_key()
    agent = agents.start()
    summary = procctl.ok("run", parent_file, "--wait", "--json", "-p", f"key={key}").json()
    parent_id = summary["instance_id"]
    # run --wait ends with the parent paused at its call, naming the child to resume.
    assert summary["status"] == "paused", summary
    assert summary["checkpoint"]["step_id"] == "ask"
    assert summary["waiting_for"]["correlation_id"] == f"leaf-{key}"
    child_id = summary["waiting_for"]["instance_id"]
    assert summary["correlation_id"] == f"call:{child_id}"

    agents.kill(agent)
    # The child is resumed while no agent runs: the signal waits in the signals directory.
    queued = procctl.ok("resume", "--correlation-id", f"leaf-{key}", "--data", "by=ada",
                        "--json").json()
    assert queued["signal"]["status"] == "queued", queued
    agents.start()

    wait_status(procctl.home, parent_id, "completed")
    shown = show_json(procctl, parent_id)
    assert shown["result"] == {"got": {"key": key, "by": "ada"}}
    # The steps before the call ran once: the parent went on from its call.
    assert _logged(procctl.home, parent_id) == ["before the call", "after the call"]
    assert [e["data"]["resumed_by"] for e in events(procctl.home, parent_id,
                                                    "instance_resumed")] == ["signal"]


def test_a_child_that_ended_just_before_the_agent_died_still_resumes_its_parent(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    parent_file = _write(tmp_path, "leaf.toml")
    key = unique_key()
    agent = agents.start(fault="before_wake_parent")
    summary = procctl.ok("run", parent_file, "--wait", "--json", "-p", f"key={key}").json()
    parent_id, child_id = summary["instance_id"], summary["waiting_for"]["instance_id"]
    # The child completes; the agent dies before it tells the parent.
    procctl("resume", "--correlation-id", f"leaf-{key}", "--data", "by=bob", "--no-wait")
    agents.died_by_fault(agent)
    assert instance_state(procctl, child_id)[0] == "completed"
    assert instance_state(procctl, parent_id)[0] == "paused"

    agents.start()  # at start, the new agent resumes parents whose child has ended
    wait_status(procctl.home, parent_id, "completed")
    assert show_json(procctl, parent_id)["result"] == {"got": {"key": key, "by": "bob"}}
    assert _logged(procctl.home, parent_id) == ["before the call", "after the call"]


def test_a_chain_of_calls_pauses_every_level_and_resumes_them_all(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    parent_file = _write(tmp_path, "middle.toml")
    key = unique_key()
    agent = agents.start()
    summary = procctl.ok("run", parent_file, "--wait", "--json", "-p", f"key={key}").json()
    parent_id = summary["instance_id"]
    waiting = summary["waiting_for"]
    # The summary follows the chain down to the instance a person resumes.
    assert len(waiting["chain"]) == 2
    middle_id, leaf_id = waiting["chain"]
    assert (waiting["instance_id"], waiting["process"]) == (leaf_id, "leaf")
    assert waiting["resume_command"] == f"procctl resume --correlation-id leaf-{key}"
    assert instance_state(procctl, middle_id)[:2] == ("paused", "ask-leaf")

    agents.stop(agent)
    agents.start()
    procctl.ok("resume", "--correlation-id", f"leaf-{key}", "--data", "by=cy")
    wait_status(procctl.home, parent_id, "completed")
    assert show_json(procctl, parent_id)["result"] == {
        "got": {"leaf": {"key": key, "by": "cy"}}}
    assert {i["instance_id"]: i["status"] for i in _children(procctl, parent_id)} == {
        middle_id: "completed"}
    wait_for(lambda: instance_state(procctl, leaf_id)[0] == "completed", timeout=10)


def test_a_child_that_expires_fails_the_call_of_its_paused_parent(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    (tmp_path / "leaf.toml").write_text(LEAF.replace(
        'correlation_id = "leaf-{{ key }}"', 'correlation_id = "leaf-{{ key }}"\nttl = "1s"'))
    parent_file = tmp_path / "top.toml"
    parent_file.write_text(PARENT.replace("CHILD", "leaf.toml"))
    agents.start()
    summary = procctl.ok("run", parent_file, "--wait", "--json", "-p",
                         f"key={unique_key()}").json()
    parent_id = summary["instance_id"]
    assert summary["status"] == "paused", summary
    # Once its second has passed, the agent's clock expires the child.
    wait_status(procctl.home, parent_id, "failed", timeout=30)
    error = show_json(procctl, parent_id)["error"]
    assert error["kind"] == "child_failed" and error["step_id"] == "ask", error
    assert "expired" in error["message"] or "time to live" in error["message"], error
    assert _logged(procctl.home, parent_id) == ["before the call"]
