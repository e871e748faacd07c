"""The agent's life cycle under pressure: two agents racing for one home, SIGTERM while
an `exec` child runs, and readiness (sd_notify) only once start-up work is done."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from faults.kit import (
    Agents,
    alive_in_group,
    check_ledger_order,
    events,
    ledger,
    ledger_process,
    ledger_task,
    query,
    statuses,
    wait_status,
    write_signal,
)
from helpers import Procctl, wait_for

WriteDefinition = Callable[..., Path]
GRACE = 2.0
MARGIN = 5.0

# The exec step's script gets its data as arguments, never inside the script text: the
# first run marks itself done, starts a grandchild, records both pids and waits; a
# repeat finds the mark and ends at once.
LONG_EXEC = """
[[steps]]
id = "long"
task = "exec"
[steps.with]
argv = [
    "sh", "-c",
    'if [ -e "$1" ]; then exit 0; fi; : > "$1"; sleep 30 & echo $! > "$2"; echo $$ > "$3"; wait',
    "sh", "{{ marker }}", "{{ grandchild }}", "{{ child }}",
]
"""

PARAMS = "".join(f'[process.params.{name}]\ntype = "str"\n'
                 for name in ("ledger", "marker", "child", "grandchild"))

RESUMED_BY = "{{ results['cp1'].resumed_by }}"
WITH_CHECKPOINT = (
    f'[process]\nname = "sigterm-checkpoint"\n{PARAMS}\n'
    f'[[steps]]\nid = "s1"\n{ledger_task("s1")}\n'
    '[[steps]]\nid = "cp1"\nkind = "checkpoint"\ncontinue = true\n'
    f'[[steps.commit]]\nid = "commit-cp1"\n{ledger_task("commit-cp1")}\n'
    f'[[steps.recover]]\nid = "recover-cp1"\n{ledger_task("recover-cp1")}\n'
    f'{LONG_EXEC}\n'
    f'[[steps]]\nid = "s2"\n{ledger_task("s2", RESUMED_BY)}')

WITHOUT_CHECKPOINT = (
    f'[process]\nname = "sigterm-restart"\non_crash = "restart"\n{PARAMS}\n'
    f'{LONG_EXEC}\n[[steps]]\nid = "s1"\n{ledger_task("s1")}')


def test_two_agents_started_at_once_exactly_one_runs(procctl: Procctl, agents: Agents) -> None:
    """Started in the same instant, three times over: one agent takes the home, the
    other exits with code 4 and names the winner's pid."""
    for round_ in range(3):
        first, second = agents.spawn(), agents.spawn()
        deadline = time.monotonic() + 30
        while first.poll() is None and second.poll() is None:
            assert time.monotonic() < deadline, "neither agent exited"
            time.sleep(0.02)
        loser, winner = (first, second) if first.poll() is not None else (second, first)
        assert loser.wait() == 4, agents.output(loser)
        message = agents.output(loser)
        assert f"another agent (pid {winner.pid}) already runs for home" in message, (
            f"round {round_}: {message}")
        agents.wait_ready(winner)
        status = procctl.ok("agent", "status", "--json").json()
        assert status["pid"] == winner.pid
        assert winner.poll() is None
        assert agents.stop(winner) == 0


def test_sigterm_waits_the_grace_then_ends_exec_children_and_recovers_at_start(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """SIGTERM while two instances wait on a 30-second `exec` child: the agent gives
    them the shutdown grace, then ends each child's whole process group and exits 0.
    At the next start the instance with a checkpoint resumes through its recover
    block; the one without follows on_crash (restart)."""
    procctl.ok("config", "set", "shutdown_grace", f"{GRACE:g}s")
    book = tmp_path / "ledger.txt"
    ids, children = {}, {}
    agent = agents.start()
    for name, text in (("checkpoint", WITH_CHECKPOINT), ("restart", WITHOUT_CHECKPOINT)):
        definition = write_definition(text, f"{name}.toml")
        children[name] = (tmp_path / f"{name}.child", tmp_path / f"{name}.grandchild")
        ids[name] = str(procctl.ok(
            "run", definition, "--json", "--no-autostart", "-p", f"ledger={book}",
            "-p", f"marker={tmp_path / name}.done", "-p", f"child={children[name][0]}",
            "-p", f"grandchild={children[name][1]}").json()["instance_id"])
    pgids = []
    for child, grandchild in children.values():
        wait_for(lambda c=child: c.exists() and c.read_text().strip(), timeout=30,
                 message=f"{child.name} to start")
        pgid = int(child.read_text())
        assert os.getpgid(int(wait_for(lambda g=grandchild: g.exists() and
                                       g.read_text().strip()))) == pgid
        assert len(alive_in_group(pgid)) >= 2  # the shell and its grandchild
        pgids.append(pgid)

    began = time.monotonic()
    os.kill(agent.pid, signal.SIGTERM)
    code = agents.wait_exit(agent, timeout=GRACE + MARGIN + 30)
    took = time.monotonic() - began
    assert code == 0, agents.output(agent)
    assert GRACE - 0.5 <= took <= GRACE + MARGIN, f"stopped after {took:.1f}s"
    assert "STOPPING=1" in agents.drain()
    for pgid in pgids:
        wait_for(lambda p=pgid: not alive_in_group(p), timeout=2,
                 message=f"process group {pgid} to be gone")
    # Interrupted, not failed: both wait in the store for the next start.
    assert statuses(procctl.home, ids.values()) == {i: "running" for i in ids.values()}

    agent = agents.start()
    for instance_id in ids.values():
        wait_status(procctl.home, instance_id, "completed")
    entries = [w for w in ledger(book) if w[0] == ids["checkpoint"]]
    check_ledger_order(ids["checkpoint"], entries)
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "recover-cp1", "s2"]
    assert entries[-1][3] == "recovery"
    assert len(events(procctl.home, ids["checkpoint"], "instance_recovered")) == 1
    assert [w[1] for w in ledger(book) if w[0] == ids["restart"]] == ["s1"]
    restarted = events(procctl.home, ids["restart"], "instance_restarted")
    assert [e["data"]["on_crash"] for e in restarted] == ["restart"]
    assert agents.stop(agent) == 0


def test_ready_only_after_waiting_signals_are_applied(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Signal files that wait in the directory when the agent starts are applied before
    it tells systemd READY=1: whoever waits for readiness sees their effect."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("ready", 1, pause_at="cp1"))
    agent = agents.start()
    ids = [str(procctl.ok("run", definition, "--json", "--no-autostart", "-p",
                          f"ledger={book}").json()["instance_id"]) for _ in range(3)]
    for instance_id in ids:
        wait_status(procctl.home, instance_id, "paused")
    assert agents.stop(agent) == 0
    directory = procctl.home / "signals"
    for instance_id in ids:
        write_signal(directory, f"wake-{instance_id}", {"correlation_id": f"{instance_id}-cp1"})

    agent = agents.spawn()
    agents.wait_ready(agent)
    # At the moment READY=1 arrives, each file is filed and its signal applied.
    assert [n for n in os.listdir(directory) if n.endswith(".json")] == []
    assert sorted(os.listdir(directory / "processed")) == sorted(f"wake-{i}.json" for i in ids)
    rows = query(procctl.home, "SELECT instance_id FROM signals WHERE status = 'applied'")
    assert sorted(str(r["instance_id"]) for r in rows) == sorted(ids)
    assert all(s in ("running", "completed") for s in statuses(procctl.home, ids).values())
    for instance_id in ids:
        wait_status(procctl.home, instance_id, "completed")
    assert agents.stop(agent) == 0
