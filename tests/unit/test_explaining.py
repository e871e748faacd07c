"""`procctl explain`'s facts (agent/explaining.py) and layout (cli/commands/explain.py),
in-process: instances made by the real engine (tests/engine/harness.py) on a real
SQLite store, read back through a read-only connection as the command reads them."""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from engine.harness import Engine

from procctl.agent.explaining import (
    Explanation,
    build,
    explain,
    owner_of,
    running_step,
)
from procctl.cli.commands.explain import commands, lines, payload_hints
from procctl.store import open_store
from procctl.store.records import AgentRecord, EventRecord, InstanceRecord, Status


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    harness = Engine(tmp_path)
    yield harness
    harness.close()


def explained(engine: Engine, instance_id: str) -> Explanation:
    """What `procctl explain` reads: a read-only connection of its own to the store."""
    store = open_store(engine.home / "procctl.db", read_only=True, must_exist=True)
    try:
        return explain(store, instance_id)
    finally:
        store.close()


def text(engine: Engine, instance_id: str, width: int = 80,
         signals_dir: Path = Path("/srv/procctl/signals")) -> list[str]:
    found = explained(engine, instance_id)
    return lines(found, payload_hints(found), signals_dir, width)


APPROVAL = """
[process]
name = "approval"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "order-17"
ttl = "1h"
{extra}

[[steps]]
id = "use"
kind = "set"
values = {{ ok = "{{{{ results['wait'].payload.approved }}}}" }}
"""


def test_a_paused_instance_waits_for_a_signal_to_its_correlation_id(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra=""))
    found = explained(engine, summary["instance_id"])
    assert (found.status, found.waits_for) == ("paused", "signal")
    assert found.correlation_id == "order-17" and found.step_id == "wait"
    assert found.since == summary["paused_at"]
    expires = datetime.fromisoformat(found.expires_at or "")
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    assert found.on_expire == "fail"
    assert "order-17" in found.reason
    resume = [c for c in found.commands if c.name == "resume"]
    assert resume and resume[0].argv == ("resume", "--correlation-id", "order-17")
    # what a signal must carry: the field the later step reads, and a line with it
    hints = payload_hints(found)
    assert [f.name for f in hints["expects"]] == ["approved"]
    assert hints["resume_line"].startswith("procctl resume --correlation-id order-17 ")
    assert "--data approved=" in hints["resume_line"]


def test_at_expiry_says_what_the_on_expire_policy_does(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(
        extra='on_expire = { resume = { approved = false, by = "timeout" } }'))
    found = explained(engine, summary["instance_id"])
    assert found.on_expire == "resume"
    assert found.expiry_payload == {"approved": False, "by": "timeout"}
    shown = "\n".join(text(engine, summary["instance_id"]))
    assert 'it resumes with the payload {"approved": false, "by": "timeout"}' in shown


def test_a_scheduled_resume_waits_for_the_clock(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra='resume_after = "2h"'))
    found = explained(engine, summary["instance_id"])
    assert found.waits_for == "clock"
    resume_at = datetime.fromisoformat(found.resume_at or "")
    assert timedelta(minutes=119) < resume_at - datetime.now(UTC) <= timedelta(hours=2)
    # a signal wakes it early: the resume command is there too
    assert any(c.name == "resume" for c in found.commands)
    assert any(line.startswith("Resumes ") for line in text(engine, summary["instance_id"]))


CHILD = """
[process]
name = "kid"

[[steps]]
id = "ask"
kind = "checkpoint"
correlation_id = "kid-{{ process.instance_id }}"
"""

PARENT = """
[process]
name = "parent"

[[steps]]
id = "run-kid"
kind = "call"
file = "child.toml"
"""


def test_a_parent_paused_at_a_call_waits_for_its_child(engine: Engine) -> None:
    engine.write(CHILD, "child.toml")
    parent = engine.run(PARENT)
    assert parent["status"] == "paused"
    child_id = parent["waiting_for"]["instance_id"]
    found = explained(engine, parent["instance_id"])
    assert found.waits_for == "child"
    assert found.child is not None and found.child["child_id"] == child_id
    assert child_id in found.reason
    by_name = {c.name: c for c in found.commands}
    assert by_name["explain"].argv == ("explain", child_id)
    assert by_name["resume"].argv == ("resume", "--correlation-id", f"kid-{child_id}")
    # and the child itself waits for its signal, and names its parent
    assert explained(engine, child_id).waits_for == "signal"
    assert explained(engine, child_id).parent_id == parent["instance_id"]
    assert f"Parent      {parent['instance_id']} (this instance runs its call step" in "\n".join(
        text(engine, child_id))


def test_signals_held_for_it_or_sent_to_a_similar_id_are_listed(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra=""))
    engine.resume("order-1", {"approved": True}, follow=False)  # a typo: held for no one
    engine.resume("invoice-99", {"approved": True}, follow=False)  # another's
    found = explained(engine, summary["instance_id"])
    assert [(s.correlation_id, s.status, s.near) for s in found.signals] == [
        ("order-1", "pending", True)]
    assert found.signals_total == 1
    shown = text(engine, summary["instance_id"])
    at = next(i for i, line in enumerate(shown) if line.startswith("Signals "))
    assert "held to order-1 (a typo?) from file:harness.json" in " ".join(shown[at:at + 3])


def test_a_signal_refused_after_it_completed_is_listed_with_its_reason(
        engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra=""))
    engine.resume("order-17", {"approved": True})
    late = engine.resume("order-17", {"approved": False}, follow=False)["signal"]
    assert late["status"] == "rejected"
    found = explained(engine, summary["instance_id"])
    assert (found.status, found.waits_for) == ("completed", "nothing")
    assert [(s.status, s.reason) for s in found.signals] == [("rejected", late["reason"])]
    assert [c.name for c in found.commands] == ["show"]


FAILING = """
[process]
name = "failing"

[[steps]]
id = "save"
kind = "checkpoint"
correlation_id = "fail-{{ process.instance_id }}"
continue = true

[[steps]]
id = "boom"
kind = "throw"
message = "the vendor said no"
"""


def test_a_failed_instance_says_where_and_why_and_how_to_retry(engine: Engine) -> None:
    summary = engine.run(FAILING)
    assert summary["status"] == "failed"
    found = explained(engine, summary["instance_id"])
    assert found.waits_for == "nothing"
    assert "step boom" in found.reason and "the vendor said no" in found.reason
    by_name = {c.name: c for c in found.commands}
    assert "from its checkpoint save" in by_name["retry"].does
    assert by_name["resume"].argv[-1] == f"fail-{summary['instance_id']}"


def test_a_running_instance_names_its_step(engine: Engine) -> None:
    instance_id = engine.start("""
[process]
name = "sleepy"

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = 30 }
""")
    engine.sleep(0.3)  # the step's events are written shortly after they happen
    found = explained(engine, instance_id)
    assert (found.status, found.waits_for) == ("running", "agent")
    assert found.running_step == ("nap", "task")
    assert "step nap" in found.reason
    assert {"follow", "wait", "cancel", "show"} <= {c.name for c in found.commands}


# -- pure parts -------------------------------------------------------------------------


def _agent(agent_id: str, *, alive: bool, stopped: bool = False) -> AgentRecord:
    return AgentRecord(agent_id, "host-a", "default", "/home", 1, "1", "2026-12-01T00:00:00",
                       "2026-12-02T00:00:00", "2026-12-01T01:00:00" if stopped else None,
                       alive, 1)


def _running(owner: str | None) -> InstanceRecord:
    return InstanceRecord("abc123", "sha", "p", None, Status.RUNNING, "{}", "{}",
                          "2026-12-01T00:00:00+00:00", "2026-12-01T00:00:01+00:00",
                          None, None, None, owner=owner, pool="gpu")


@pytest.mark.parametrize(("agents", "state"), [
    ([_agent("a1", alive=True)], "alive"),
    ([_agent("a1", alive=False)], "lease lost"),
    ([_agent("a1", alive=False, stopped=True)], "stopped"),
    ([_agent("b2", alive=True)], "unknown"),
])
def test_the_owner_and_its_lease(agents: list[AgentRecord], state: str) -> None:
    assert owner_of(_running("a1"), agents).state == state


def test_on_a_shared_store_a_lost_lease_means_another_agent_takes_it_over() -> None:
    record = _running("a1")
    found = build(record, None, [], owner=owner_of(record, [_agent("a1", alive=False)]),
                  shared=True)
    assert "a1 lost its lease" in found.reason
    assert "another live agent of pool gpu takes it over" in found.reason
    handed = build(_running(None), None, [], owner=owner_of(_running(None), []),
                   shared=True)
    assert "waits for an agent of pool gpu" in handed.reason


def test_the_running_step_is_the_innermost_one_not_finished() -> None:
    def event(n: int, kind: str, step: str, path: str, data: str = "{}") -> EventRecord:
        return EventRecord(n, "abc123", f"2026-12-01T00:00:0{n}", kind, step, path, data)
    events = [event(1, "step_started", "loop", "steps[0]", '{"kind": "foreach"}'),
              event(2, "step_started", "a", "steps[0].do[0]", '{"kind": "task"}'),
              event(3, "step_finished", "a", "steps[0].do[0]"),
              event(4, "step_started", "b", "steps[0].do[1]", '{"kind": "task"}')]
    assert running_step(events) == ("b", "task", "2026-12-01T00:00:04")
    assert running_step(events[:3]) == ("loop", "foreach", "2026-12-01T00:00:01")
    assert running_step([]) is None


# -- layout -----------------------------------------------------------------------------


def test_lines_fit_the_width_and_a_long_command_still_pastes(engine: Engine) -> None:
    long_id = "approval-" + "x" * 50
    summary = engine.run(APPROVAL.format(extra="").replace("order-17", long_id))
    for width in (80, 160):
        shown = text(engine, summary["instance_id"], width)
        assert all(len(line) <= width for line in shown), "\n".join(shown)
        assert all(line == line.rstrip() for line in shown)
        # the resume command, cut with ` \`, is one command again in a shell
        start = next(i for i, line in enumerate(shown) if "procctl resume" in line)
        block = [shown[start]]
        while block[-1].endswith(" \\"):
            block.append(shown[start + len(block)])
        pasted = shlex.split(" ".join(line.removesuffix(" \\") for line in block),
                             comments=True)
        assert pasted[pasted.index("procctl"):][:4] == [
            "procctl", "resume", "--correlation-id", long_id]


def test_a_cancelled_instance_says_who_cancelled_it_and_why(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra=""))
    error = {"kind": "cancelled", "message": "cancelled", "by": "alice@host",
             "reason": "duplicate order"}
    store = engine.worker.store
    engine._call(engine.worker.call(
        lambda: store.cancel_instance(summary["instance_id"], json.dumps(error),
                                      from_statuses=("paused",))))
    found = explained(engine, summary["instance_id"])
    assert (found.status, found.waits_for) == ("cancelled", "nothing")
    assert found.reason.startswith("it was cancelled by alice@host (duplicate order)")
    assert [c.name for c in found.commands] == ["show"]


def test_failed_on_a_payload_field_its_signal_lacked_resume_with_it_first(
        engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra=""))
    resumed = engine.resume("order-17", {"by": "ada"})["instance"]
    assert resumed["status"] == "failed", resumed
    found = explained(engine, summary["instance_id"])
    moves = commands(found, payload_hints(found))
    assert moves[0]["command"].startswith(
        "procctl resume --correlation-id order-17 --data approved=")
    assert "a retry fails the same way" in moves[0]["does"]
    assert [m["command"].split()[1] for m in moves] == ["resume", "retry", "show"]
    # pasted into a shell as it is, the block runs these commands and nothing else
    assert pasted(text(engine, summary["instance_id"], 80)) == [
        shlex.split(m["command"]) for m in moves]


def pasted(shown: list[str]) -> list[list[str]]:
    """The commands a shell runs from the `Move it on` block pasted as it is."""
    start = next(i for i, line in enumerate(shown) if line.startswith("Move it on "))
    script = "\n".join(line[12:] for line in shown[start:]).replace(" \\\n", " ")
    return [words for line in script.splitlines()
            if (words := shlex.split(line, comments=True))]


def test_held_after_a_crash_it_waits_for_a_retry() -> None:
    record = InstanceRecord(
        "abc123", "sha", "p", None, Status.PAUSED, "{}", "{}", "2026-12-01T00:00:00+00:00",
        "2026-12-01T00:00:01+00:00", None, None,
        json.dumps({"kind": "crashed", "message": "the agent stopped while it ran"}),
        paused_at="2026-12-01T00:00:01+00:00")
    found = build(record, None, [])
    assert found.waits_for == "retry"
    assert "on_crash" in found.reason and "the agent stopped while it ran" in found.reason
    assert found.commands[0].line == "procctl retry abc123"


def test_control_characters_from_data_never_reach_the_terminal(engine: Engine) -> None:
    summary = engine.run(APPROVAL.format(extra="").replace(
        'correlation_id = "order-17"', 'correlation_id = "order-{{ process.name }}\\u001b[2J"'))
    shown = "\n".join(text(engine, summary["instance_id"]))
    assert "\x1b" not in shown
    assert "order-approval\\x1b[2J" in shown


def test_a_resume_past_due_says_an_agent_applies_it_once_one_runs(engine: Engine) -> None:
    # the harness has no clock of its own: the resume stays due, as with no agent
    summary = engine.run(APPROVAL.format(extra='resume_at = "2020-01-01T00:00:00Z"'))
    assert summary["status"] == "paused"
    resumes = next(line for line in text(engine, summary["instance_id"], 160)
                   if line.startswith("Resumes "))
    assert resumes.endswith("ago); overdue: an agent's clock applies it once one runs")
    expires = next(line for line in text(engine, summary["instance_id"], 160)
                   if line.startswith("Expires "))
    assert "overdue" not in expires
