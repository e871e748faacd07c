"""`procctl agent status` tells the truth: ready, or degraded when a part of the agent
keeps failing (exit code 9), and back to ready once it works again.

The failure is a real error on the agent's store thread: PROCCTL_FAIL=store.due_resumes
makes the scheduler's first store call of every tick raise a DatabaseError, as a
damaged page would (agent/faults.py).
"""

from __future__ import annotations

from typing import Any

from helpers import Procctl, wait_for

EXIT_DEGRADED = 9


def _status(procctl: Procctl) -> tuple[int, dict[str, Any]]:
    result = procctl("agent", "status", "--json")
    return result.code, result.json()


def test_a_healthy_agent_is_ready(procctl: Procctl) -> None:
    procctl.ok("agent", "start")
    wait_for(lambda: _status(procctl)[1]["state"] == "ready", timeout=20,
             message="the agent to be ready")
    code, data = _status(procctl)
    assert code == 0
    assert data["problems"] == [] and data["disk_wait"] is None, data
    assert data["startup"]["phase"] == "done" and data["startup"]["ready_at"], data
    human = procctl.ok("agent", "status").out
    assert "ready" in human and "Problem" not in human, human


def test_a_scheduler_that_keeps_failing_is_degraded(procctl: Procctl) -> None:
    procctl.ok("agent", "start", env={"PROCCTL_FAIL": "store.due_resumes"})

    def degraded() -> dict[str, Any] | None:
        data = _status(procctl)[1]
        return data if data["state"] == "degraded" else None

    data = wait_for(degraded, timeout=20, message="agent status to say degraded")
    scheduler = next(p for p in data["problems"] if p["component"] == "scheduler")
    assert scheduler["degraded"] is True and scheduler["failures"] >= 3, data
    assert "DatabaseError: database disk image is malformed" in scheduler["error"], data
    assert scheduler["since"] <= scheduler["last_at"], data

    human = procctl("agent", "status")
    assert human.code == EXIT_DEGRADED, str(human)
    assert "degraded" in human.out, str(human)
    assert "the scheduler has failed" in human.out, str(human)
    assert "database disk image is malformed" in human.out, str(human)
    assert procctl("agent", "status", "--json").code == EXIT_DEGRADED

    # One log line with a traceback per failure for the first few, not four a second.
    log = (procctl.home / "agent.log").read_text()
    assert log.count("scheduler tick failed") <= 3, log[-2000:]


def test_a_scheduler_that_fails_for_a_while_is_ready_again(procctl: Procctl) -> None:
    """20 failed ticks (about 5 seconds): degraded meanwhile, ready after."""
    procctl.ok("agent", "start", env={"PROCCTL_FAIL": "store.due_resumes:20"})
    wait_for(lambda: _status(procctl)[0] == EXIT_DEGRADED, timeout=20,
             message="agent status to exit 9")
    wait_for(lambda: _status(procctl)[1]["state"] == "ready", timeout=20,
             message="agent status to be ready again")
    code, data = _status(procctl)
    assert code == 0 and data["problems"] == [], data
    log = (procctl.home / "agent.log").read_text()
    assert "scheduler works again after 20 failed ticks" in log, log[-2000:]
