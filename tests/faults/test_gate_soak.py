"""Gates under random SIGKILLs: every gate applies exactly one signal, none stays pending.

Half the instances are gates (a checkpoint that pauses, its commit block naps for a
random moment); their signal files are dropped as soon as the checkpoint is in the
store, so many arrive while the commit block still runs (held) or while no agent runs.
The other half run checkpoints that go on. The agent is killed with SIGKILL at random
moments, then restarted.

The suite's size: 14 kills over 28 instances. The full size (the issue's soak):
PROCCTL_GATE_SOAK_KILLS=120 PROCCTL_GATE_SOAK_INSTANCES=400 (and PROCCTL_GATE_SOAK_SEED).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faults.kit import (
    Agents,
    events,
    ledger_of,
    ledger_process,
    ledger_task,
    query,
    statuses,
    write_signal,
)
from helpers import Procctl, wait_for

WriteDefinition = Callable[..., Path]

KILLS = int(os.environ.get("PROCCTL_GATE_SOAK_KILLS", "14"))
INSTANCES = int(os.environ.get("PROCCTL_GATE_SOAK_INSTANCES", "28"))
SEED = int(os.environ.get("PROCCTL_GATE_SOAK_SEED", str(time.time_ns() % 100_000)))

# The suite's size takes under a minute; the full size, several.
pytestmark = pytest.mark.timeout(max(120, KILLS * 5 + INSTANCES))

GATE = f"""
[process]
name = "soak-gate"
on_crash = "restart"

[process.params.ledger]
type = "str"

[process.params.key]
type = "str"

[process.params.nap]
type = "float"

[[steps]]
id = "ask"
{ledger_task("ask")}
[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "soak-{{{{ key }}}}"
ttl = "1h"

[[steps.commit]]
id = "commit-gate"
{ledger_task("commit-gate")}
[[steps.commit]]
id = "nap"
task = "sleep"
with = {{ seconds = "{{{{ nap }}}}" }}

[[steps.recover]]
id = "recover-gate"
{ledger_task("recover-gate")}
[[steps]]
id = "after"
{ledger_task("after", "{{ results['gate'].resumed_by }}")}
[[steps]]
id = "done"
kind = "return"
value = {{ approved = "{{{{ results['gate'].payload.approved }}}}" }}
"""


def test_gates_under_random_kills(procctl: Procctl, agents: Agents, tmp_path: Path,
                                  write_definition: WriteDefinition) -> None:
    rng = random.Random(SEED)
    book = tmp_path / "ledger.txt"
    gate_file = write_definition(GATE, "gate.toml")
    other_file = write_definition(ledger_process("soak-other", 2), "other.toml")
    signals = procctl.home / "signals"
    todo = [("gate" if n % 2 == 0 else "other", n) for n in range(INSTANCES)]
    rng.shuffle(todo)
    gates: dict[str, str] = {}  # instance id -> key
    others: list[str] = []
    signalled: set[str] = set()

    def start_some(count: int) -> None:
        for _ in range(min(count, len(todo))):
            kind, number = todo.pop()
            if kind == "gate":
                key = f"{SEED}-{number}"
                data = procctl.ok("run", gate_file, "--json", "--no-autostart",
                                  "-p", f"ledger={book}", "-p", f"key={key}",
                                  "-p", f"nap={rng.choice([0, 0.05, 0.2, 0.5])}").json()
                gates[str(data["instance_id"])] = key
            else:
                data = procctl.ok("run", other_file, "--json", "--no-autostart",
                                  "-p", f"ledger={book}",
                                  "-p", f"nap={rng.choice([0, 0.05, 0.2])}").json()
                others.append(str(data["instance_id"]))

    def send_due_signals() -> None:
        """A signal file for every gate whose checkpoint is in the store."""
        waiting = [key for key in gates.values() if key not in signalled]
        if not waiting:
            return
        rows = query(procctl.home, "SELECT correlation_id FROM checkpoints")
        saved = {str(row["correlation_id"]) for row in rows}
        for key in waiting:
            if f"soak-{key}" in saved:
                write_signal(signals, f"answer-{key}", {
                    "correlation_id": f"soak-{key}", "signal_id": f"answer-{key}",
                    "payload": {"approved": True}})
                signalled.add(key)

    per_cycle = max(1, -(-INSTANCES // KILLS))
    for _ in range(KILLS):
        proc = agents.start()
        start_some(per_cycle)
        deadline = time.monotonic() + rng.uniform(0.05, 0.8)
        while time.monotonic() < deadline:  # the kill comes at a random moment
            send_due_signals()
            time.sleep(0.02)
        agents.kill(proc)

    proc = agents.start()
    start_some(len(todo))

    def settled() -> bool:
        send_due_signals()
        states = statuses(procctl.home, [*gates, *others])
        return all(state in ("completed", "failed") for state in states.values())

    wait_for(settled, timeout=120, interval=0.1, message="every instance to settle")
    agents.stop(proc)

    states = statuses(procctl.home, [*gates, *others])
    assert [i for i in [*gates, *others] if states[i] != "completed"] == [], (
        f"seed {SEED}: not completed")
    for instance_id, key in gates.items():
        applied = query(procctl.home, "SELECT id FROM signals WHERE signal_id = ? AND"
                        " status = 'applied'", f"answer-{key}")
        assert len(applied) == 1, f"seed {SEED}: gate {instance_id} applied {len(applied)}"
        assert len(events(procctl.home, instance_id, "signal_applied")) == 1
        assert "after" in ledger_of(book, instance_id)
        shown = procctl.ok("show", instance_id, "--json").json()
        assert shown["result"] == {"approved": True}, f"seed {SEED}: {shown}"
    pending = query(procctl.home, "SELECT signal_id FROM signals WHERE status = 'pending'")
    assert [row["signal_id"] for row in pending] == [], f"seed {SEED}"
    held = query(procctl.home, "SELECT COUNT(*) AS n FROM signals WHERE status = 'applied'"
                 " AND reason LIKE 'held pending%'")[0]["n"]
    again = sum(1 for instance_id in gates for recovered in
                events(procctl.home, instance_id, "instance_recovered")
                if recovered["data"].get("pause_again"))
    print(f"gate soak: seed {SEED}, {KILLS} kills, {len(gates)} gates, {len(others)} others;"
          f" {held} signals held and applied by the pause, {again} recoveries paused again"
          " at a gate; every gate applied exactly one signal, none pending")
