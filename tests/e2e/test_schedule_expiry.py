"""The agent's clock end to end: scheduled resumes (polling loops, resume_after, one
that fell due while the agent was down), time to live (expiry by the agent, on_expire,
`purge-expired` with no agent, signals for expired instances), and the samples that
pause: approval, poll and reply. A scheduled_resume's max_iterations, and absolute
times, are checked on the real engine: tests/engine/test_schedule_at.py.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from helpers import (
    SAMPLES,
    Procctl,
    instance_state,
    run_paused,
    show_json,
    unique_key,
    wait_for,
    wait_settled,
)

WriteDefinition = Callable[..., Path]







def _paused_ids(procctl: Procctl) -> set[str]:
    return {row["instance_id"] for row in procctl.ok("list-paused", "--json").json()}


def drop_signal(directory: Path, name: str, document: Any) -> Path:
    """The signal file protocol: write NAME.tmp, then rename it to NAME.json."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{name}.tmp"
    tmp.write_text(json.dumps(document), encoding="utf-8")
    final = directory / f"{name}.json"
    os.rename(tmp, final)
    return final


# -- scheduled resumes ------------------------------------------------------------------


def test_poll_sample_polls_until_the_file_appears(
        shared_procctl: Procctl, tmp_path: Path) -> None:
    flag = tmp_path / "ready.flag"
    started = shared_procctl.ok("run", SAMPLES / "poll.toml", "--json", "-p", f"path={flag}")
    instance_id = started.json()["instance_id"]

    def polled_twice() -> bool:
        status, _, iteration = instance_state(shared_procctl, instance_id)
        assert status in ("running", "paused"), status
        return (iteration or 0) >= 2

    wait_for(polled_twice, timeout=20, message="two scheduled resumes")
    flag.touch()
    shown = wait_settled(shared_procctl, instance_id)
    checks = shown["result"]["checks"]
    assert shown["result"] == {"path": str(flag), "checks": checks}
    assert checks >= 3
    resumes = [e for e in shown["history"] if e["kind"] == "scheduled_resume"]
    assert len(resumes) == checks - 1  # each check after the first was a scheduled resume


SCHEDULED = """
[process]
name = "scheduled"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "scheduled-{{ key }}"
resume_after = "AFTER"

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['wait'].resumed_by }}", iteration = "{{ results['wait'].iteration }}" }
"""


def test_resume_after_resumes_by_itself(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SCHEDULED.replace("AFTER", "1s"))
    summary = run_paused(shared_procctl, path, "-p", f"key={unique_key()}")
    resume_at = datetime.fromisoformat(summary["checkpoint"]["resume_at"])
    paused_at = datetime.fromisoformat(summary["paused_at"])
    assert timedelta(0) < resume_at - paused_at <= timedelta(seconds=1)
    shown = wait_settled(shared_procctl, summary["instance_id"])
    assert shown["result"] == {"by": "schedule", "iteration": 1}
    assert datetime.fromisoformat(shown["ended_at"]) >= resume_at


def test_a_resume_that_fell_due_while_the_agent_was_down_happens_at_start(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SCHEDULED.replace("AFTER", "4s"))
    summary = run_paused(procctl, path, "-p", "key=offline")
    procctl.ok("agent", "stop")
    instance_id = summary["instance_id"]
    resume_at = datetime.fromisoformat(summary["checkpoint"]["resume_at"])
    wait_for(lambda: datetime.now(UTC) > resume_at + timedelta(milliseconds=300),
             timeout=10, message="the scheduled time to pass")
    # Due, but nobody ran it: still paused, still listed with its due time.
    rows = procctl.ok("list-paused", "--json").json()
    assert [(r["instance_id"], r["resume_at"]) for r in rows] == [
        (instance_id, summary["checkpoint"]["resume_at"])], \
        "not paused: did the agent take more than 4 s to stop?"

    procctl.ok("agent", "start")
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == {"by": "schedule", "iteration": 1}


# -- time to live -----------------------------------------------------------------------

EXPIRING = """
[process]
name = "expiring"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "expiring-{{ key }}"
ttl = "TTL"
POLICY

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['wait'].resumed_by }}", payload = "{{ results['wait'].payload }}" }
"""


def _expiring(ttl: str, policy: str = "") -> str:
    return EXPIRING.replace("TTL", ttl).replace("POLICY", policy)


RESUME_POLICY = 'on_expire = { resume = { approved = false, by = "timeout" } }'


def test_the_agent_expires_a_paused_instance_and_refuses_its_signals(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(_expiring("1s"))
    key = unique_key()
    summary = run_paused(shared_procctl, path, "-p", f"key={key}")
    instance_id = summary["instance_id"]
    shown = wait_settled(shared_procctl, instance_id, "failed")
    assert shown["error"]["kind"] == "expired"
    assert "time to live" in shown["error"]["message"]
    assert shown["checkpoint"] is None  # the snapshot was discarded
    assert "resume_command" not in shown
    assert instance_id not in _paused_ids(shared_procctl)
    assert "instance_expired" in [e["kind"] for e in shown["history"]]

    signals = shared_procctl.home / "signals"
    drop_signal(signals, f"late-{key}", {"correlation_id": f"expiring-{key}"})
    refused = shared_procctl("resume", "--correlation-id", f"expiring-{key}")
    assert refused.code == 7, str(refused)
    assert "expired" in refused.err
    error = signals / "rejected" / f"late-{key}.json.error.json"
    wait_for(error.exists, message="the late signal file to be rejected")
    assert "expired" in json.loads(error.read_text())["reason"]
    assert show_json(shared_procctl, instance_id)["status"] == "failed"


def test_on_expire_resume_takes_the_timeout_path(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(_expiring("1s", RESUME_POLICY))
    summary = run_paused(shared_procctl, path, "-p", f"key={unique_key()}")
    shown = wait_settled(shared_procctl, summary["instance_id"])
    assert shown["result"] == {"by": "expiry",
                               "payload": {"approved": False, "by": "timeout"}}
    expired = [e for e in shown["history"] if e["kind"] == "instance_expired"]
    assert len(expired) == 1 and expired[0]["data"]["action"] == "resume"


def test_purge_expired_works_with_the_agent_stopped(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    failing = write_definition(_expiring("8s"), "failing.toml")
    resuming = write_definition(_expiring("8s", RESUME_POLICY), "resuming.toml")
    lasting = write_definition(_expiring("1h"), "lasting.toml")
    procctl.ok("agent", "start")
    runs = procctl.many(("run", failing, "--wait", "--json", "-p", "key=fail"),
                        ("run", resuming, "--wait", "--json", "-p", "key=resume"),
                        ("run", lasting, "--wait", "--json", "-p", "key=last"))
    procctl.ok("agent", "stop")
    for run in runs:
        assert run.code == 0 and run.json()["status"] == "paused", str(run)
    fail_id, resume_id, last_id = (run.json()["instance_id"] for run in runs)
    rows = procctl.ok("list-paused", "--json").json()
    assert {r["instance_id"] for r in rows} == {fail_id, resume_id, last_id}, \
        "an instance expired before the agent stopped: the test could not start"
    due = max(datetime.fromisoformat(r["expires_at"]) for r in rows
              if r["instance_id"] != last_id)
    wait_for(lambda: datetime.now(UTC) > due + timedelta(milliseconds=100), timeout=10,
             message="the TTLs to run out")

    dry = procctl.ok("purge-expired", "--dry-run", "--json").json()
    assert dry == {
        "dry_run": True,
        "expired": [{"instance_id": fail_id, "action": "failed", "payload": None}],
        "left_for_agent": [{"instance_id": resume_id, "action": "resume",
                            "payload": {"approved": False, "by": "timeout"}}],
    }
    assert _paused_ids(procctl) == {fail_id, resume_id, last_id}  # nothing changed

    done = procctl.ok("purge-expired")
    assert f"Expired {fail_id}: failed (reason expired), snapshot discarded" in done.out
    assert f"{resume_id}: resumes with its on_expire payload when the agent starts" in done.out
    shown, rows_after = procctl.many(("show", fail_id, "--json"), ("list-paused", "--json"))
    assert shown.json()["status"] == "failed", str(shown)
    assert shown.json()["error"]["kind"] == "expired"
    assert shown.json()["checkpoint"] is None
    assert {r["instance_id"] for r in rows_after.json()} == {resume_id, last_id}

    procctl.ok("agent", "start")
    resumed = wait_settled(procctl, resume_id)
    assert resumed["result"] == {"by": "expiry",
                                 "payload": {"approved": False, "by": "timeout"}}
    assert _paused_ids(procctl) == {last_id}


# -- samples ----------------------------------------------------------------------------


def test_approval_sample_approve_and_reject(shared_procctl: Procctl) -> None:
    key = unique_key()
    approve, reject = shared_procctl.many(
        ("run", SAMPLES / "approval.toml", "--wait", "--json", "-p", f"order={key}-1",
         "-p", "amount=1200"),
        ("run", SAMPLES / "approval.toml", "--wait", "--json", "-p", f"order={key}-2"))
    for run in (approve, reject):
        assert run.code == 0 and run.json()["status"] == "paused", str(run)
    assert approve.json()["correlation_id"] == f"approval-{key}-1"
    shown = show_json(shared_procctl, approve.json()["instance_id"])
    # As the sample says: it stores only `order` and `amount`.
    assert shown["stored_variables"] == {"order": f"{key}-1", "amount": 1200}
    expires = datetime.fromisoformat(shown["checkpoint"]["expires_at"])
    assert abs(expires - datetime.now(UTC) - timedelta(days=7)) < timedelta(minutes=5)

    approved = shared_procctl.ok("resume", "--correlation-id", f"approval-{key}-1",
                                 "--data", "approved=true", "--data", "by=ada", "--json")
    instance = approved.json()["instance"]
    assert instance["status"] == "completed"
    assert instance["result"] == {"order": f"{key}-1", "amount": 1200, "approved": True,
                                  "by": "ada"}

    drop_signal(shared_procctl.home / "signals", f"approval-{key}-2",
                {"correlation_id": f"approval-{key}-2",
                 "payload": {"approved": False, "by": "bob"}})
    rejected = wait_settled(shared_procctl, reject.json()["instance_id"])
    assert rejected["result"] == {"order": f"{key}-2", "approved": False, "by": "bob"}


def test_reply_sample_sends_once_without_possible_repeat(
        shared_procctl: Procctl, tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.jsonl"
    key = unique_key()
    summary = shared_procctl.ok("run", SAMPLES / "reply.toml", "--wait", "--json",
                                "-p", f"outbox={outbox}", "-p", f"message_id={key}").json()
    assert summary["status"] == "completed", summary
    assert summary["result"] == {"message_id": key, "recovered": False}
    lines = outbox.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"messageId": key,
                                                     "possibleRepeat": False}]
