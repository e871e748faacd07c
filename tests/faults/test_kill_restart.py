"""SIGKILL the agent at random moments while 20 instances run, restart it, and again:
50 cycles by default (PROCCTL_FAULT_CYCLES=N for more; PROCCTL_FAULT_SEED=S repeats a
run). Every instance must end completed, the store must pass `PRAGMA integrity_check`
after every kill, and the ledger that the steps append to must show at-least-once
steps between checkpoints and never a step that a committed checkpoint covers.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from faults.kit import (
    CYCLES_ENV,
    SEED_ENV,
    Agents,
    check_ledger_order,
    integrity,
    ledger,
    ledger_process,
    position,
    query,
    statuses,
)
from helpers import Procctl, wait_for

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths

CYCLES = int(os.environ.get(CYCLES_ENV, "50"))
WAVE = 20
CHECKPOINTS = 4


@pytest.mark.timeout(90 + 4 * CYCLES)
def test_sigkill_at_random_moments_loses_no_checkpoint(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: Callable[..., Path]) -> None:
    seed = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"\n{CYCLES_ENV}={CYCLES} {SEED_ENV}={seed}")
    home = procctl.home
    ledger_path = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("kill-restart", CHECKPOINTS))
    client = AgentClient(HomePaths.resolve(home))

    def start_wave() -> list[str]:
        """20 new instances, started through the agent's socket as `procctl run` does."""
        ids = []
        for _ in range(WAVE):
            params = {"ledger": str(ledger_path), "nap": round(rng.uniform(0.02, 0.3), 3)}
            data = client.request("run", source=definition.read_text(), file=str(definition),
                                  base_dir=str(tmp_path), params=values.encode(params),
                                  wait=False)
            ids.append(str(data["instance_id"]))
        return ids

    # (ledger length at a kill, instance, the checkpoint the store held for it then)
    committed: list[tuple[int, str, str]] = []
    completed_at: dict[str, int] = {}  # instance -> ledger length when seen completed
    instances: list[str] = []
    wave: list[str] = []
    early_kills = 0
    began = time.monotonic()
    for cycle in range(CYCLES):
        proc = agents.spawn()
        if wave and rng.random() < 0.2:
            # While it starts: opening the store, recovering, applying waiting signals.
            early_kills += 1
            time.sleep(rng.uniform(0.0, 0.6))
        else:
            agents.wait_ready(proc)
            if all(s == "completed" for s in statuses(home, wave).values()):
                wave = start_wave()
                instances += wave
            time.sleep(rng.uniform(0.0, 1.0))
        agents.kill(proc)

        check = integrity(home)
        assert check == "ok", f"cycle {cycle}: integrity_check after SIGKILL: {check}"
        length = len(ledger(ledger_path))
        for row in query(home, "SELECT instance_id, step_id FROM checkpoints"):
            committed.append((length, str(row["instance_id"]), str(row["step_id"])))
        now = statuses(home, instances)
        bad = {i: s for i, s in now.items() if s not in ("running", "completed")}
        assert not bad, f"cycle {cycle}: instances neither running nor completed: {bad}"
        for instance_id, status in now.items():
            if status == "completed":
                completed_at.setdefault(instance_id, length)
    cycling = time.monotonic() - began

    final = agents.start()
    wait_for(lambda: all(s == "completed" for s in statuses(home, instances).values()),
             timeout=60, message="every instance to complete after the last restart")
    assert agents.stop(final) == 0
    assert integrity(home) == "ok"

    entries = ledger(ledger_path)
    by_instance: dict[str, list[tuple[int, list[str]]]] = {}
    for index, words in enumerate(entries):
        assert words[0] in instances, f"a ledger line of no instance: {words}"
        by_instance.setdefault(words[0], []).append((index, words))

    # The order of each instance's entries: at-least-once steps, exactly-once commits.
    for instance_id in instances:
        mine = [words for _, words in by_instance.get(instance_id, [])]
        check_ledger_order(instance_id, mine)
        names = [words[1] for words in mine]
        for k in range(1, CHECKPOINTS + 2):
            assert f"s{k}" in names, f"{instance_id} never ran s{k}: {names}"
        for k in range(1, CHECKPOINTS + 1):
            assert f"commit-cp{k}" in names or f"recover-cp{k}" in names, names

    # What the store held at each kill: no step before that checkpoint ran again.
    for length, instance_id, step_id in committed:
        for index, words in by_instance[instance_id]:
            if index >= length:
                assert position(words[1]) > position(step_id) or \
                    words[1] == f"recover-{step_id}", (
                        f"{instance_id}: {words[1]} ran after {step_id} was committed "
                        f"(ledger line {index}, kill at line {length})")
    for instance_id, length in completed_at.items():
        late = [words for index, words in by_instance[instance_id] if index >= length]
        assert not late, f"{instance_id} ran steps after it completed: {late}"

    # The result reports how the last checkpoint was left, as the last step saw it.
    for row in query(home, "SELECT id, result_json FROM instances"):
        result = values.loads(row["result_json"])
        last = [words for _, words in by_instance[row["id"]] if words[1] == f"s{CHECKPOINTS + 1}"]
        assert str(result["last"]) == last[-1][3], (row["id"], result, last)

    counts = Counter(words[1].split("-")[0] for words in entries)
    repeats = sum(n - 1 for n in Counter((w[0], w[1]) for w in entries
                                         if w[1].startswith("s")).values())
    print(f"{CYCLES} kill/restart cycles ({early_kills} during start-up) in {cycling:.1f}s, "
          f"{len(instances)} instances, {len(entries)} ledger lines, "
          f"{counts['recover']} recover blocks, {repeats} repeated steps")
    assert counts["recover"] > 0, "no kill landed after a checkpoint: nothing was tested"
