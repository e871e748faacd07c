"""Soak: three agents on one PostgreSQL store; for ~35 s a random one is killed with
SIGKILL and started again in the same home, while ~60 instances run. Half of them pause
at a gate and are resumed by signal files dropped in a random agent's signals directory
(a third of those signals are sent a second time, to another agent); the other half run
checkpoints that go on. In the end every instance has completed and every signal was
applied exactly once: one `applied` row per signal_id, the repeats `duplicate`.

The suite's size takes about a minute. Bigger: PROCCTL_MA_SOAK_SECONDS=300
PROCCTL_MA_SOAK_INSTANCES=400 (and PROCCTL_MA_SOAK_SEED=S to repeat a run).
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from faults.kit import (
    check_ledger_order,
    ledger,
    ledger_of,
    ledger_process,
    ledger_task,
    write_signal,
)
from fleet import Fleet, FleetAgent
from helpers import wait_for
from pg_server import require_psycopg

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths

require_psycopg()

SECONDS = float(os.environ.get("PROCCTL_MA_SOAK_SECONDS", "35"))
INSTANCES = int(os.environ.get("PROCCTL_MA_SOAK_INSTANCES", "60"))
SEED = int(os.environ.get("PROCCTL_MA_SOAK_SEED", str(time.time_ns() % 100_000)))

pytestmark = pytest.mark.timeout(int(SECONDS) + 90 + INSTANCES // 4)

GATE = f"""
[process]
name = "ma-soak-gate"
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
id = "think"
task = "sleep"
with = {{ seconds = "{{{{ nap }}}}" }}

[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "ma-soak-{{{{ key }}}}"
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


class Soak:
    """The instances started, the signals sent, and the agents to send them to."""

    def __init__(self, fleet: Fleet, tmp_path: Path, rng: random.Random) -> None:
        self.fleet = fleet
        self.rng = rng
        self.book = tmp_path / "ledger.txt"
        self.gate_file = tmp_path / "gate.toml"
        self.gate_file.write_text(GATE)
        self.other_file = tmp_path / "other.toml"
        self.other_file.write_text(ledger_process("ma-soak-other", 3))
        self.todo = ["gate" if n % 2 == 0 else "other" for n in range(INSTANCES)]
        rng.shuffle(self.todo)
        self.gates: dict[str, str] = {}  # instance id -> key
        self.others: list[str] = []
        self.sent: Counter[str] = Counter()  # signal_id -> files written
        self.again: list[tuple[float, str]] = []  # (when, key) of a second send

    def start_some(self, agent: FleetAgent, count: int) -> None:
        """Start up to `count` instances on `agent` (alive), through its socket as
        `procctl run` (without --wait) does."""
        client = AgentClient(HomePaths.resolve(agent.home))
        for _ in range(min(count, len(self.todo))):
            kind = self.todo.pop()
            nap = self.rng.choice([0.05, 0.2, 0.5, 1.0])
            if kind == "gate":
                key = f"{SEED}-{len(self.gates)}"
                params: dict[str, Any] = {"ledger": str(self.book), "key": key, "nap": nap}
                source = self.gate_file
            else:
                params = {"ledger": str(self.book), "nap": nap}
                source = self.other_file
            data = client.request("run", source=source.read_text(), file=str(source),
                                  base_dir=str(source.parent), params=values.encode(params),
                                  wait=False)
            if kind == "gate":
                self.gates[str(data["instance_id"])] = key
            else:
                self.others.append(str(data["instance_id"]))

    def send(self, key: str, name: str) -> None:
        """A signal file for gate `key`, in a random agent's signals directory (a dead
        agent reads it when it starts again)."""
        agent = self.rng.choice(list(self.fleet))
        write_signal(agent.home / "signals", name, {
            "correlation_id": f"ma-soak-{key}", "signal_id": f"answer-{key}",
            "payload": {"approved": True}})
        self.sent[f"answer-{key}"] += 1

    def send_due(self) -> None:
        """A signal for every gate whose checkpoint is in the store; a third of them a
        second time, a moment later, to another (or the same) agent."""
        now = time.monotonic()
        for when, key in [x for x in self.again if x[0] <= now]:
            self.again.remove((when, key))
            self.send(key, f"again-{key}")
        waiting = {f"ma-soak-{key}": key for key in self.gates.values()
                   if f"answer-{key}" not in self.sent}
        if not waiting:
            return
        rows = self.fleet.sql("SELECT correlation_id FROM checkpoints"
                              " WHERE correlation_id = ANY(%s)", list(waiting))
        for (correlation_id,) in rows:
            key = waiting[str(correlation_id)]
            self.send(key, f"answer-{key}")
            if self.rng.random() < 1 / 3:
                self.again.append((now + self.rng.uniform(0, 1.5), key))

    def busy_wait(self, seconds: float) -> None:
        """Send what is due for `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.send_due()
            time.sleep(0.05)

    def statuses(self) -> dict[str, str]:
        ids = [*self.gates, *self.others]
        rows = self.fleet.sql("SELECT id, status FROM instances WHERE id = ANY(%s)", ids)
        found = {str(r[0]): str(r[1]) for r in rows}
        return {i: found.get(i, "missing") for i in ids}


def test_random_kills_across_three_agents_lose_no_instance_and_no_signal(
        fleet: Fleet, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    print(f"\nPROCCTL_MA_SOAK_SEED={SEED}")
    soak = Soak(fleet, tmp_path, rng)
    agents = fleet.start(3)
    cycles = max(1, int(SECONDS / 2.5))
    per_cycle = max(1, -(-INSTANCES * 3 // 4 // cycles))
    soak.start_some(agents[0], INSTANCES // 4)
    kills = 0
    began = time.monotonic()
    while time.monotonic() - began < SECONDS:
        starter = rng.choice(agents)
        if not starter.alive:  # killed while it started: bring it back
            starter.spawn()
        starter.wait_ready()
        soak.start_some(starter, per_cycle)
        soak.busy_wait(rng.uniform(0.3, 1.2))
        victim = rng.choice(agents)  # at times one still starting up
        victim.kill()
        kills += 1
        # Back before its 2 s lease runs out (it takes its own instances back) or
        # after (its peers took them over).
        soak.busy_wait(rng.uniform(0, 3))
        victim.spawn()
    for agent in agents:
        if not agent.alive:
            agent.spawn()
        agent.wait_ready()
        soak.start_some(agent, len(soak.todo))

    def settled() -> bool:
        soak.send_due()
        return all(s in ("completed", "failed") for s in soak.statuses().values())

    wait_for(settled, timeout=60, interval=0.1, message="every instance to settle")
    assert all(a.alive for a in agents), fleet.logs()
    states = soak.statuses()
    assert len(states) == INSTANCES
    assert [i for i, s in states.items() if s != "completed"] == [], f"seed {SEED}"

    # Every signal applied exactly once, the repeats duplicates, nothing left pending.
    rows = fleet.sql("SELECT signal_id, status, reason FROM signals")
    by_id: dict[str, Counter[str]] = {}
    for signal_id, status, _ in rows:
        by_id.setdefault(str(signal_id), Counter())[str(status)] += 1
    assert set(by_id) == set(soak.sent), f"seed {SEED}"
    for signal_id, counts in by_id.items():
        assert counts["applied"] == 1, f"seed {SEED}: {signal_id}: {dict(counts)}"
        assert set(counts) <= {"applied", "duplicate"}, f"seed {SEED}: {signal_id}: {counts}"
        assert sum(counts.values()) >= soak.sent[signal_id], f"seed {SEED}: {signal_id}"
    applied = Counter(str(r[0]) for r in fleet.sql(
        "SELECT instance_id FROM events WHERE kind = 'signal_applied'"
        " AND instance_id = ANY(%s)", list(soak.gates)))
    for instance_id, key in soak.gates.items():
        assert applied[instance_id] == 1, f"seed {SEED}: gate {instance_id} ({key})"
        assert "after" in ledger_of(soak.book, instance_id), f"seed {SEED}: {instance_id}"
    results = dict(fleet.sql("SELECT id, result_json FROM instances WHERE id = ANY(%s)",
                             list(soak.gates)))
    wrong = {i: r for i, r in results.items() if values.loads(r) != {"approved": True}}
    assert not wrong, f"seed {SEED}: {wrong}"
    # The others: at-least-once steps between checkpoints, each commit block once.
    entries = ledger(soak.book)
    for instance_id in soak.others:
        check_ledger_order(instance_id, [w for w in entries if w[0] == instance_id])

    repeats = sum(n - 1 for n in soak.sent.values())
    recovered = fleet.sql("SELECT count(*) FROM events WHERE kind = 'instance_recovered'")[0][0]
    print(f"ma soak: seed {SEED}, {kills} kills in {time.monotonic() - began:.0f}s, "
          f"{len(soak.gates)} gates, "
          f"{len(soak.others)} others, {len(soak.sent)} signals (+{repeats} repeats), "
          f"{recovered} recoveries; every signal applied once")
    assert kills >= 5, "too few kills: nothing was tested"
    assert recovered > 0, "no kill landed on a running instance: nothing was tested"

