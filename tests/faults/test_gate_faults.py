"""A pausing checkpoint (a gate) is never passed without its signal.

Every gap of a pause (snapshot committed -> commit block -> paused, a held signal
taken) and of a resume (signal applied -> launched -> snapshot loaded -> recover block
or commit value -> next step) has a fault point (agent/faults.py). At each, the agent
is killed (SIGKILL, PROCCTL_FAULT) or stopped cleanly (SIGTERM while the instance waits
there, PROCCTL_FAULT_STOP); the next agent must pause at the gate (recover block run,
TTL unchanged) and apply the one signal exactly once, whenever it was sent.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faults.kit import Agents, events, ledger_of, ledger_task, query, wait_status, write_signal
from helpers import SAMPLES, Procctl, unique_key, wait_for

WriteDefinition = Callable[..., Path]

# The commit block asks (ledger), then waits until the `release` file exists, so a test
# can send the signal while the instance is between its commit and its pause.
GATE = f"""
[process]
name = "gate"

[process.params.ledger]
type = "str"

[process.params.release]
type = "str"

[process.params.key]
type = "str"

[[steps]]
id = "ask"
{ledger_task("ask")}
[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "gate-{{{{ key }}}}"
ttl = "1h"

[[steps.commit]]
id = "commit-gate"
{ledger_task("commit-gate")}
[[steps.commit]]
id = "hold"
task = "exec"
[steps.commit.with]
argv = ["sh", "-c", "while [ ! -e \\"$1\\" ]; do sleep 0.02; done", "sh", "{{{{ release }}}}"]

[[steps.commit]]
id = "asked"
kind = "return"
value = "asked"

[[steps.recover]]
id = "recover-gate"
{ledger_task("recover-gate")}
[[steps.recover]]
id = "recovered"
kind = "return"
value = "recovered"

[[steps]]
id = "after"
{ledger_task("after", "{{ results['gate'].resumed_by }}")}
[[steps]]
id = "done"
kind = "return"
[steps.value]
approved = "{{{{ results['gate'].payload.approved }}}}"
value = "{{{{ results['gate'].value }}}}"
"""

MODES = ["kill", "stop"]


def arm(mode: str, point: str) -> dict[str, str]:
    return {"PROCCTL_FAULT": point} if mode == "kill" else {"PROCCTL_FAULT_STOP": point}


class Gate:
    """One gate instance in the test's home, and what to check about it."""

    def __init__(self, procctl: Procctl, agents: Agents, tmp_path: Path,
                 write_definition: WriteDefinition) -> None:
        self.procctl, self.agents = procctl, agents
        self.key = unique_key()
        self.book = tmp_path / "ledger.txt"
        self.release = tmp_path / "release"
        self.definition = write_definition(GATE, "gate.toml")
        procctl.ok("config", "set", "shutdown_grace", "1s")
        self.instance_id = ""

    def start(self, mode: str | None = None,
              point: str | None = None) -> subprocess.Popen[bytes]:
        env = arm(mode, point) if mode and point else {}
        return self.agents.start(extra_env=env)

    def run(self) -> str:
        self.instance_id = str(self.procctl.ok(
            "run", self.definition, "--json", "--no-autostart", "-p", f"ledger={self.book}",
            "-p", f"release={self.release}", "-p", f"key={self.key}").json()["instance_id"])
        return self.instance_id

    def checkpoint(self) -> dict[str, object] | None:
        rows = query(self.procctl.home, "SELECT * FROM checkpoints WHERE instance_id = ?",
                     self.instance_id)
        return dict(rows[0]) if rows else None

    def signal(self, name: str = "answer") -> None:
        write_signal(self.procctl.home / "signals", name, {
            "correlation_id": f"gate-{self.key}", "signal_id": f"sig-{self.key}",
            "payload": {"approved": True}})

    def signals(self) -> list[str]:
        rows = query(self.procctl.home, "SELECT status FROM signals WHERE signal_id = ?",
                     f"sig-{self.key}")
        return sorted(row["status"] for row in rows)

    def wait_paused_with_its_signal_pending(self) -> None:
        wait_status(self.procctl.home, self.instance_id, "paused")
        assert self.signals() in ([], ["pending"])

    def check_done(self, *, asked: int = 1) -> None:
        """Completed, with the signal applied exactly once, none left pending, the
        payload seen by the steps after the gate."""
        wait_status(self.procctl.home, self.instance_id, ("completed", "failed"))
        shown = self.procctl.ok("show", self.instance_id, "--json").json()
        assert shown["status"] == "completed", shown
        assert shown["result"]["approved"] is True
        # (a file read again after a kill before it was moved is kept as a duplicate)
        assert [s for s in self.signals() if s != "duplicate"] == ["applied"]
        applied = events(self.procctl.home, self.instance_id, "signal_applied")
        assert len(applied) == 1
        entries = ledger_of(self.book, self.instance_id)
        assert entries.count("after") == 1, entries
        assert entries.count("commit-gate") == asked, entries
        pending = query(self.procctl.home, "SELECT id FROM signals WHERE status = 'pending'")
        assert pending == []


@pytest.fixture
def gate(procctl: Procctl, agents: Agents, tmp_path: Path,
         write_definition: WriteDefinition) -> Iterator[Gate]:
    made = Gate(procctl, agents, tmp_path, write_definition)
    yield made
    # A commit block's waiting `sh` outlives an agent killed with SIGKILL (nothing is left
    # to end its process group): release it, so no loop is left running after the test.
    made.release.touch()


def stopped(agents: Agents, proc: subprocess.Popen[bytes], mode: str) -> None:
    """The agent ended at its point: killed (SIGKILL) or stopped cleanly (exit 0)."""
    if mode == "kill":
        agents.died_by_fault(proc)
    else:
        assert agents.wait_exit(proc) == 0, agents.output(proc)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("early", [False, True], ids=["signal-later", "signal-early"])
def test_stopped_between_commit_and_pause_it_pauses_after_recovery(
        gate: Gate, agents: Agents, mode: str, early: bool) -> None:
    """The defect: stopped after its commit block, before it paused. The next agent
    runs the recover block and pauses at the same checkpoint (TTL unchanged); a signal
    sent during the commit block (early) was held and is applied once, at that pause."""
    proc = gate.start(mode, "after_checkpoint_commit")
    gate.run()
    wait_for(lambda: "commit-gate" in ledger_of(gate.book, gate.instance_id))
    saved = gate.checkpoint()
    assert saved is not None and saved["pausing"] == 1
    if early:
        gate.signal()
        wait_for(lambda: gate.signals() == ["pending"])
    gate.release.touch()
    stopped(agents, proc, mode)
    assert gate.signals() == (["pending"] if early else [])

    proc = gate.start()
    if early:
        gate.check_done()
    else:
        gate.wait_paused_with_its_signal_pending()
        paused = gate.checkpoint()
        assert paused is not None and paused["expires_at"] == saved["expires_at"]
        assert paused["pausing"] == 0 and paused["iteration"] == 0
        assert json.loads(str(paused["commit_value_json"])) == "recovered"
        gate.signal()
        gate.check_done()
    entries = ledger_of(gate.book, gate.instance_id)
    assert entries == ["ask", "commit-gate", "recover-gate", "after"], entries
    assert agents.stop(proc) == 0


@pytest.mark.parametrize("mode", MODES)
def test_stopped_in_the_commit_block_it_pauses_after_recovery(
        gate: Gate, agents: Agents, mode: str) -> None:
    """Killed, or stopped by `procctl agent stop` (the grace runs out), while the commit
    block still waits: the next agent pauses at the gate."""
    proc = gate.start()
    gate.run()
    wait_for(lambda: "commit-gate" in ledger_of(gate.book, gate.instance_id))
    if mode == "kill":
        agents.kill(proc)
    else:
        gate.procctl.ok("agent", "stop")
        agents.wait_exit(proc)
    proc = gate.start()
    gate.wait_paused_with_its_signal_pending()
    gate.signal()
    gate.check_done()
    assert agents.stop(proc) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("early", [False, True], ids=["signal-later", "signal-early"])
def test_after_the_pause_commit(gate: Gate, agents: Agents, mode: str, early: bool) -> None:
    """Stopped once the pause committed (with the held signal taken, when early), before
    the resume it took was launched: the signal is applied once, by the pause."""
    if not early:
        gate.release.touch()
    proc = gate.start(mode, "after_pause_commit")
    gate.run()
    if early:
        wait_for(lambda: "commit-gate" in ledger_of(gate.book, gate.instance_id))
        gate.signal()
        wait_for(lambda: gate.signals() == ["pending"])
        gate.release.touch()
    stopped(agents, proc, mode)
    proc = gate.start()
    if not early:
        gate.wait_paused_with_its_signal_pending()
        gate.signal()
    gate.check_done()
    assert agents.stop(proc) == 0


@pytest.mark.parametrize("mode", MODES)
def test_stopped_before_the_commit_block(gate: Gate, agents: Agents, mode: str) -> None:
    """Stopped after the snapshot's commit, before its commit block ran: the recover
    block asks instead, and the instance pauses there; the signal sent meanwhile (its
    file waiting in the signals directory) is applied once."""
    gate.release.touch()
    proc = gate.start(mode, "before_commit_block")
    gate.run()
    stopped(agents, proc, mode)
    gate.signal()
    proc = gate.start()
    gate.check_done(asked=0)
    entries = ledger_of(gate.book, gate.instance_id)
    assert entries == ["ask", "recover-gate", "after"], entries
    assert agents.stop(proc) == 0


RESUME_POINTS = ["before_resume_launch", "after_snapshot_loaded", "after_resume_value"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("point", RESUME_POINTS)
def test_stopped_while_a_signal_resumes_it(gate: Gate, agents: Agents, mode: str,
                                           point: str) -> None:
    """Paused at the gate; the signal is applied and the agent stops at a gap of the
    resume: the next agent recovers it with the signal's payload, applied once."""
    gate.release.touch()
    proc = gate.start(mode, point)
    gate.run()
    wait_status(gate.procctl.home, gate.instance_id, "paused")
    gate.signal()
    stopped(agents, proc, mode)
    assert gate.signals() == ["applied"]
    proc = gate.start()
    gate.check_done()
    assert agents.stop(proc) == 0


@pytest.mark.parametrize("mode", MODES)
def test_stopped_in_recovery_before_it_pauses_again(gate: Gate, agents: Agents,
                                                    mode: str) -> None:
    """Killed after the commit block; the next agent stops in its recovery (in the
    recover block, then before the pause): the third pauses, and the signal sent while
    none ran is applied once."""
    gate.release.touch()
    proc = gate.start("kill", "after_checkpoint_commit")
    gate.run()
    agents.died_by_fault(proc)
    for point in ("in_recover", "before_repause"):
        proc = agents.spawn(extra_env=arm(mode, point))
        stopped(agents, proc, mode)
        held = gate.checkpoint()
        assert held is not None and held["pausing"] == 1
    gate.signal()
    proc = gate.start()
    gate.check_done()
    entries = ledger_of(gate.book, gate.instance_id)
    assert entries.count("after") == 1 and entries[-1] == "after"
    assert agents.stop(proc) == 0


def test_the_approval_sample_pauses_after_a_crash(procctl: Procctl, agents: Agents) -> None:
    """The issue's reproduction: samples/approval.toml, killed after its checkpoint's
    commit, the agent restarted: it waits for its answer instead of failing with
    "'None' has no attribute 'approved'"."""
    key = unique_key()
    proc = agents.start(extra_env=arm("kill", "after_checkpoint_commit"))
    instance_id = str(procctl.ok("run", SAMPLES / "approval.toml", "--json", "--no-autostart",
                                 "-p", f"order={key}").json()["instance_id"])
    agents.died_by_fault(proc)
    proc = agents.start()
    wait_status(procctl.home, instance_id, "paused")
    procctl.ok("resume", "--correlation-id", f"approval-{key}", "--data", "approved=true",
               "--data", "by=ada")
    wait_status(procctl.home, instance_id, "completed")
    result = procctl.ok("show", instance_id, "--json").json()["result"]
    assert result["approved"] is True and result["by"] == "ada"
    assert agents.stop(proc) == 0


def test_a_dead_group_commit_fails_its_checkpoints_and_is_restarted(
        procctl: Procctl, agents: Agents) -> None:
    """The task that commits checkpoints dies (PROCCTL_FAIL=group_commit:1): the
    checkpoint that waited fails with a clear error, the next one commits."""
    proc = agents.start(extra_env={"PROCCTL_FAIL": "group_commit:1"})
    first = str(procctl.ok("run", SAMPLES / "approval.toml", "--json", "--no-autostart",
                           "-p", f"order={unique_key()}").json()["instance_id"])
    wait_status(procctl.home, first, "failed")
    error = procctl.ok("show", first, "--json").json()["error"]
    assert "group commit failed" in error["message"] and error["kind"] == "store"
    second = str(procctl.ok("run", SAMPLES / "approval.toml", "--json", "--no-autostart",
                            "-p", f"order={unique_key()}").json()["instance_id"])
    wait_status(procctl.home, second, "paused")
    assert "checkpoint group commit died" in agents.output(proc)
    assert agents.stop(proc) == 0


FAILING_GATE = """
[process]
name = "failing-gate"

[process.params.key]
type = "str"

[process.params.needed]
type = "str"

[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "failing-{{ key }}"

[[steps.commit]]
id = "ask"
task = "file.read"
with = { path = "{{ needed }}" }

[[steps]]
id = "done"
kind = "return"
value = { approved = "{{ results['gate'].payload.approved }}" }
"""


def test_a_retried_gate_whose_commit_block_failed_pauses_again(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Its commit block failed before it paused; `procctl retry` runs the recover block
    and pauses at the gate (a retry brings no answer); the signal then goes on."""
    key = unique_key()
    definition = write_definition(FAILING_GATE, "failing.toml")
    proc = agents.start()
    instance_id = str(procctl.ok("run", definition, "--json", "--no-autostart",
                                 "-p", f"key={key}", "-p", f"needed={tmp_path / 'nope'}"
                                 ).json()["instance_id"])
    wait_status(procctl.home, instance_id, "failed")
    procctl("retry", instance_id)
    wait_status(procctl.home, instance_id, "paused")
    procctl.ok("resume", "--correlation-id", f"failing-{key}", "--data", "approved=true")
    wait_status(procctl.home, instance_id, "completed")
    assert procctl.ok("show", instance_id, "--json").json()["result"] == {"approved": True}
    assert agents.stop(proc) == 0
