"""`purge-expired` with no agent expires a called child as the agent's clock does: the
parent paused at the call is woken in the same go (its call fails once an agent runs it
on), not left paused at the call of a child that is gone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from helpers import Procctl, instance_state, show_json, unique_key, wait_for, wait_settled

LEAF = """
[process]
name = "purged-leaf"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "purged-leaf-{{ key }}"
ttl = "6s"

[[steps]]
id = "answer"
kind = "return"
value = "{{ results['wait'].payload }}"
"""

PARENT = """
[process]
name = "purged-top"
[process.params.key]
type = "str"

[[steps]]
id = "ask"
kind = "call"
file = "leaf.toml"
params = { key = "{{ key }}" }

[[steps]]
id = "done"
kind = "return"
value = { got = "{{ results['ask'] }}" }
"""


def test_purge_expired_without_an_agent_wakes_the_parent_of_an_expired_child(
        procctl: Procctl, tmp_path: Path) -> None:
    (tmp_path / "leaf.toml").write_text(LEAF)
    parent_file = tmp_path / "top.toml"
    parent_file.write_text(PARENT)
    procctl.ok("agent", "start")
    summary = procctl.ok("run", parent_file, "--wait", "--json", "-p",
                         f"key={unique_key()}").json()
    procctl.ok("agent", "stop")
    parent_id = summary["instance_id"]
    assert summary["status"] == "paused", summary
    rows = {r["instance_id"]: r for r in procctl.ok("list-paused", "--json").json()}
    assert set(rows) >= {parent_id} and len(rows) == 2, \
        "the child expired before the agent stopped: the test could not start"
    child_id = next(i for i in rows if i != parent_id)
    due = datetime.fromisoformat(rows[child_id]["expires_at"])
    wait_for(lambda: datetime.now(UTC) > due + timedelta(milliseconds=100), timeout=15,
             message="the child's TTL to run out")

    done = procctl.ok("purge-expired", "--json").json()
    assert [e["instance_id"] for e in done["expired"]] == [child_id], done
    assert instance_state(procctl, child_id)[0] == "failed"
    # The parent no longer waits at the call of a child that is gone: it was woken.
    assert instance_state(procctl, parent_id)[0] == "running"
    assert parent_id not in {r["instance_id"] for r in
                             procctl.ok("list-paused", "--json").json()}
    woke = [e for e in show_json(procctl, parent_id)["history"]
            if e["kind"] == "signal_applied"]
    assert len(woke) == 1, woke

    # The next agent runs it on: its call fails, as when the agent's clock expires it.
    procctl.ok("agent", "start")
    shown = wait_settled(procctl, parent_id, "failed", timeout=30)
    error = shown["error"]
    assert error["kind"] == "child_failed" and error["step_id"] == "ask", error
    assert "expired" in error["message"] or "time to live" in error["message"], error
