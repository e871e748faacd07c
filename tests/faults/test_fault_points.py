"""Each fault point (PROCCTL_FAULT) kills the agent at an exact moment; the next agent
must carry on as the reliability guarantees say (docs/reliability.md).

The instances append "<instance> <step> <idempotency key> <resumed_by>" to a ledger
(tests/faults/kit.py: ledger_process), so each test sees which steps and which
commit or recover blocks ran, and how often.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from faults.kit import (
    Agents,
    check_ledger_order,
    events,
    integrity,
    ledger,
    ledger_of,
    ledger_process,
    query,
    wait_status,
    write_signal,
)
from helpers import SAMPLES, Procctl

WriteDefinition = Callable[..., Path]


def run(procctl: Procctl, definition: Path, *params: str) -> str:
    """Start an instance on the running agent (never starting one of its own)."""
    args: list[str | Path] = ["run", definition, "--json", "--no-autostart"]
    for param in params:
        args += ["-p", param]
    return str(procctl.ok(*args).json()["instance_id"])


def show(procctl: Procctl, instance_id: str) -> dict[str, object]:
    data: dict[str, object] = procctl.ok("show", instance_id, "--json").json()
    return data


def test_before_checkpoint_commit_resumes_from_the_previous_checkpoint(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Killed as the second checkpoint is about to commit: the first one is the last
    committed, so the next agent resumes there, through its recover block."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("second-checkpoint", 2, on_crash="fail"))
    agent = agents.start(fault="before_checkpoint_commit:2")
    instance_id = run(procctl, definition, f"ledger={book}")
    agents.died_by_fault(agent)
    assert integrity(procctl.home) == "ok"
    assert ledger_of(book, instance_id) == ["s1", "commit-cp1", "s2"]
    held = query(procctl.home, "SELECT step_id FROM checkpoints WHERE instance_id = ?",
                 instance_id)
    assert [row["step_id"] for row in held] == ["cp1"]

    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    entries = [w for w in ledger(book) if w[0] == instance_id]
    check_ledger_order(instance_id, entries)
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "s2", "recover-cp1", "s2",
                                       "commit-cp2", "s3"]
    assert entries[4][3] == "recovery"  # results['cp1'].resumed_by, as s2 saw it again
    kinds = [e["kind"] for e in show(procctl, instance_id)["history"]]  # type: ignore[union-attr]
    assert kinds.count("instance_recovered") == 1
    assert agents.stop(agent) == 0


@pytest.mark.parametrize("on_crash", ["restart", "fail", "hold"])
def test_before_the_first_checkpoint_on_crash_decides(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition, on_crash: str) -> None:
    """Killed before any checkpoint was committed: restart runs it again from the
    start, fail fails it (reason: agent stopped before the first checkpoint), hold
    pauses it for a person; `procctl retry` starts a failed or held one again."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process(f"first-{on_crash}", 1, on_crash=on_crash))
    agent = agents.start(fault="before_checkpoint_commit")
    instance_id = run(procctl, definition, f"ledger={book}")
    agents.died_by_fault(agent)
    assert ledger_of(book, instance_id) == ["s1"]
    assert not query(procctl.home, "SELECT 1 FROM checkpoints WHERE instance_id = ?",
                     instance_id)

    agent = agents.start()
    wanted = {"restart": "completed", "fail": "failed", "hold": "paused"}[on_crash]
    wait_status(procctl.home, instance_id, wanted)
    summary = show(procctl, instance_id)
    history = [e["kind"] for e in summary["history"]]  # type: ignore[union-attr]
    if on_crash == "restart":
        assert "instance_restarted" in history
        assert ledger_of(book, instance_id) == ["s1", "s1", "commit-cp1", "s2"]
        assert agents.stop(agent) == 0
        return

    assert summary["error"] == {"kind": "interrupted",
                                "message": "agent stopped before the first checkpoint"}
    assert summary["retry_command"] == f"procctl retry {instance_id}"
    assert ("instance_failed" if on_crash == "fail" else "instance_held") in history
    text = procctl.ok("show", instance_id).out
    assert "agent stopped before the first checkpoint" in text
    assert f"procctl retry {instance_id}" in text
    if on_crash == "hold":
        listed = procctl.ok("list", "--status", "paused", "--json").json()
        assert [i["instance_id"] for i in listed] == [instance_id]
    assert ledger_of(book, instance_id) == ["s1"]  # nothing ran after the restart

    retried = procctl("retry", instance_id)
    assert retried.code == 0, str(retried)
    assert "restarted from the beginning" in retried.out
    assert "completed" in retried.out
    assert ledger_of(book, instance_id) == ["s1", "s1", "commit-cp1", "s2"]
    assert agents.stop(agent) == 0


def test_after_checkpoint_commit_the_reply_is_sent_again_as_a_possible_repeat(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    """samples/reply.toml, killed after the snapshot was committed and the commit block
    sent the reply: the next agent runs the recover block, which sends it again with
    possibleRepeat = true, and the process learns it was recovered."""
    outbox = tmp_path / "outbox.jsonl"
    agent = agents.start(fault="after_checkpoint_commit")
    instance_id = run(procctl, SAMPLES / "reply.toml", f"outbox={outbox}", "message_id=m-7")
    agents.died_by_fault(agent)
    first = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert first == [{"messageId": "m-7", "possibleRepeat": False}]

    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert lines == [{"messageId": "m-7", "possibleRepeat": False},
                     {"messageId": "m-7", "possibleRepeat": True}]
    summary = show(procctl, instance_id)
    assert summary["result"] == {"message_id": "m-7", "recovered": True}
    assert agents.stop(agent) == 0


def test_before_the_commit_block_only_the_recover_block_sends(
        procctl: Procctl, agents: Agents, tmp_path: Path) -> None:
    """Killed between the snapshot's commit and its commit block: the commit block never
    runs for that checkpoint; the recover block does, once."""
    outbox = tmp_path / "outbox.jsonl"
    agent = agents.start(fault="before_commit_block")
    instance_id = run(procctl, SAMPLES / "reply.toml", f"outbox={outbox}", "message_id=m-8")
    agents.died_by_fault(agent)
    assert not outbox.exists()

    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    lines = [json.loads(line) for line in outbox.read_text().splitlines()]
    assert lines == [{"messageId": "m-8", "possibleRepeat": True}]
    assert show(procctl, instance_id)["result"] == {"message_id": "m-8", "recovered": True}
    assert agents.stop(agent) == 0


def test_killed_in_recover_recovers_again_and_completes(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Killed as the recover block starts: the next start runs it again."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("in-recover", 2))
    agent = agents.start(fault="after_checkpoint_commit")
    instance_id = run(procctl, definition, f"ledger={book}")
    agents.died_by_fault(agent)
    assert ledger_of(book, instance_id) == ["s1", "commit-cp1"]

    agent = agents.spawn(fault="in_recover")  # dies during recovery, before READY
    agents.died_by_fault(agent)
    assert ledger_of(book, instance_id) == ["s1", "commit-cp1"]
    assert integrity(procctl.home) == "ok"

    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    entries = [w for w in ledger(book) if w[0] == instance_id]
    check_ledger_order(instance_id, entries)
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "recover-cp1", "s2",
                                       "commit-cp2", "s3"]
    recovered = events(procctl.home, instance_id, "instance_recovered")
    assert [e["data"]["iteration"] for e in recovered] == [1, 2]
    assert agents.stop(agent) == 0


@pytest.mark.parametrize("with_signal_id", [False, True], ids=["file-key", "signal-id"])
def test_after_signal_commit_the_signal_applies_once(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition, with_signal_id: bool) -> None:
    """Killed after a signal was applied in the store, before its file was moved: the
    next agent finds the file again, recognises it, moves it to processed/, and the
    instance is resumed once, with the signal's payload."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("signalled", 2, pause_at="cp1"))
    agent = agents.start()
    instance_id = run(procctl, definition, f"ledger={book}")
    wait_status(procctl.home, instance_id, "paused")
    assert agents.stop(agent) == 0

    signals_dir = procctl.home / "signals"
    document: dict[str, object] = {"correlation_id": f"{instance_id}-cp1",
                                   "payload": {"approved": True}}
    if with_signal_id:
        document["signal_id"] = "approval-1"
    agent = agents.start(fault="after_signal_commit")
    path = write_signal(signals_dir, "approve", document)
    agents.died_by_fault(agent)
    assert path.exists()  # the signal is committed, its file not moved
    applied = query(procctl.home, "SELECT status FROM signals WHERE correlation_id = ?",
                    f"{instance_id}-cp1")
    assert [row["status"] for row in applied] == ["applied"]

    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    assert not path.exists()
    assert (signals_dir / "processed" / "approve.json").exists()
    assert not list((signals_dir / "rejected").iterdir())
    rows = query(procctl.home, "SELECT status FROM signals WHERE correlation_id = ?",
                 f"{instance_id}-cp1")
    assert [row["status"] for row in rows].count("applied") == 1
    assert len(events(procctl.home, instance_id, "signal_applied")) == 1
    entries = [w for w in ledger(book) if w[0] == instance_id]
    check_ledger_order(instance_id, entries)
    # Resumed once: s2 ran once, after the recover block (the resume was interrupted).
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "recover-cp1", "s2",
                                       "commit-cp2", "s3"]
    # The payload that was applied is what the process sees, though it was recovered.
    result = show(procctl, instance_id)["result"]
    assert result == {"last": None, "resumed_by": ["recovery", None],
                      "payload": [{"approved": True}, None]}
    cp1 = query(procctl.home, "SELECT data_json FROM events WHERE instance_id = ? AND"
                " kind = 'instance_resumed' ORDER BY id", instance_id)
    resumes = [json.loads(row["data_json"]) for row in cp1]
    assert resumes[-1]["resumed_by"] == "recovery"
    assert agents.stop(agent) == 0


def test_retry_of_a_failed_instance_with_a_checkpoint_runs_recover(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """A step fails after a signal resumed the instance from its checkpoint; once the
    cause is fixed, `procctl retry` goes on from the checkpoint through the recover
    block, and `procctl show` says how."""
    book = tmp_path / "ledger.txt"
    marker = tmp_path / "fixed"
    text = ledger_process("retried", 1, pause_at="cp1").replace(
        '[[steps]]\nid = "s2"',
        '[[steps]]\nid = "needs-fix"\ntask = "exec"\n'
        'with = { argv = ["test", "-e", "{{ marker }}"] }\n\n'
        '[[steps]]\nid = "s2"', 1).replace(
        '[process.params.nap]', '[process.params.marker]\ntype = "str"\n\n'
        '[process.params.nap]', 1)
    definition = write_definition(text)
    agent = agents.start()
    instance_id = run(procctl, definition, f"ledger={book}", f"marker={marker}")
    wait_status(procctl.home, instance_id, "paused")
    resumed = procctl("resume", "--correlation-id", f"{instance_id}-cp1",
                      "--data", "approved=true")
    assert resumed.code == 1, str(resumed)  # resumed, then failed at needs-fix
    summary = show(procctl, instance_id)
    assert summary["status"] == "failed"
    assert summary["retry_command"] == f"procctl retry {instance_id}"
    text_out = procctl.ok("show", instance_id).out
    assert f"procctl retry {instance_id}" in text_out
    assert "through the recover block" in text_out

    marker.touch()
    retried = procctl("retry", instance_id)
    assert retried.code == 0, str(retried)
    assert "resumed from its checkpoint" in retried.out
    entries = [w for w in ledger(book) if w[0] == instance_id]
    check_ledger_order(instance_id, entries)
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "recover-cp1", "s2"]
    summary = show(procctl, instance_id)
    assert summary["status"] == "completed"
    assert summary["result"]["resumed_by"] == ["manual"]
    assert agents.stop(agent) == 0
