"""Signals against stopped, flooded and killed agents: every file is filed away (in
processed/ or rejected/), every paused instance is resumed exactly once, with the
payload of the signal that resumed it.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from faults.kit import (
    SEED_ENV,
    Agents,
    check_ledger_order,
    integrity,
    ledger,
    ledger_process,
    query,
    statuses,
    wait_status,
    write_signal,
)
from helpers import Procctl, wait_for

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths

WriteDefinition = Callable[..., Path]
INSTANCES = 100
SIGNALS_EACH = 100  # 10,000 files


def start_paused(procctl: Procctl, definition: Path, ledger_path: Path, count: int,
                 nap: float = 0.0) -> list[str]:
    """`count` instances paused at cp1 (started through the socket, as `procctl run`)."""
    client = AgentClient(HomePaths.resolve(procctl.home))
    ids = []
    for _ in range(count):
        data = client.request("run", source=definition.read_text(), file=str(definition),
                              base_dir=str(definition.parent),
                              params=values.encode({"ledger": str(ledger_path), "nap": nap}),
                              wait=False)
        ids.append(str(data["instance_id"]))
    wait_for(lambda: all(s == "paused" for s in statuses(procctl.home, ids).values()),
             timeout=60, message=f"{count} instances to pause")
    return ids


def signal_files(directory: Path) -> list[str]:
    """Signal files still waiting in the directory itself."""
    return [name for name in os.listdir(directory) if name.endswith(".json")]


def filed(directory: Path, folder: str) -> list[str]:
    path = directory / folder
    if not path.exists():
        return []
    return [n for n in os.listdir(path) if n.endswith(".json") and not n.endswith(".error.json")]


def test_a_signal_dropped_while_no_agent_runs_is_applied_at_start(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """A signal file dropped while no agent runs waits in the directory; the next agent
    applies it as it starts (the file goes to processed/)."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("late-signal", 1, pause_at="cp1"))
    agent = agents.start()
    instance_id = str(procctl.ok("run", definition, "--json", "--no-autostart", "-p",
                                 f"ledger={book}").json()["instance_id"])
    wait_status(procctl.home, instance_id, "paused")
    assert agents.stop(agent) == 0
    write_signal(procctl.home / "signals", "late", {"correlation_id": f"{instance_id}-cp1",
                                                    "payload": {"n": 1}})
    agent = agents.start()
    wait_status(procctl.home, instance_id, "completed")
    assert procctl.ok("show", instance_id, "--json").json()["result"] == {
        "last": "signal", "resumed_by": ["signal"], "payload": [{"n": 1}]}
    assert (procctl.home / "signals" / "processed" / "late.json").exists()
    assert agents.stop(agent) == 0


@pytest.mark.timeout(240)
def test_ten_thousand_signal_files_at_once(procctl: Procctl, agents: Agents, tmp_path: Path,
                                           write_definition: WriteDefinition) -> None:
    """100 paused instances, 100 signal files each with distinct signal_ids, all dropped
    at once: one signal applies per instance, the others are refused (the instance is no
    longer paused) and filed in rejected/ with the reason; none is left or lost."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("flood", 1, pause_at="cp1"))
    agent = agents.start()
    ids = start_paused(procctl, definition, book, INSTANCES)
    directory = procctl.home / "signals"

    # Written under temporary names first (the agent ignores them), then renamed.
    staged = []
    for k in range(SIGNALS_EACH):
        for instance_id in ids:
            tmp = directory / f"{instance_id}-{k}.tmp"
            tmp.write_text(json.dumps({"correlation_id": f"{instance_id}-cp1",
                                       "signal_id": f"{instance_id}-{k}",
                                       "payload": {"k": k}}))
            staged.append(tmp)
    began = time.monotonic()
    for tmp in staged:
        os.rename(tmp, tmp.with_suffix(".json"))
    wait_for(lambda: not signal_files(directory), timeout=180, interval=0.2,
             message="every signal file to be filed away")
    took = time.monotonic() - began
    wait_for(lambda: all(s == "completed" for s in statuses(procctl.home, ids).values()),
             timeout=60, message="every instance to complete")
    total = INSTANCES * SIGNALS_EACH
    print(f"\n{total} signal files filed in {took:.1f}s ({total / took:.0f} per second)")
    assert agents.stop(agent) == 0
    assert integrity(procctl.home) == "ok"

    rows = query(procctl.home, "SELECT signal_id, status, instance_id, payload_json, source"
                 " FROM signals")
    assert len(rows) == total
    by_status = Counter(str(r["status"]) for r in rows)
    assert set(by_status) <= {"applied", "rejected"}, by_status
    applied = {str(r["instance_id"]): r for r in rows if r["status"] == "applied"}
    assert sorted(applied) == sorted(ids)
    assert by_status["applied"] == INSTANCES  # exactly one per instance
    processed, rejected = filed(directory, "processed"), filed(directory, "rejected")
    assert len(processed) == INSTANCES
    assert len(rejected) == total - INSTANCES
    assert sorted(processed) == sorted(str(r["source"]).split(":", 1)[1]
                                       for r in applied.values())
    errors = [n for n in os.listdir(directory / "rejected") if n.endswith(".error.json")]
    assert len(errors) == len(rejected)
    sample = json.loads((directory / "rejected" / errors[0]).read_text())
    assert "not paused" in sample["reason"] or "completed" in sample["reason"], sample

    entries = ledger(book)
    for instance_id in ids:
        mine = [w for w in entries if w[0] == instance_id]
        check_ledger_order(instance_id, mine)
        assert [w[1] for w in mine] == ["s1", "commit-cp1", "s2"]  # resumed once
        result = values.loads(query(procctl.home, "SELECT result_json FROM instances"
                                    " WHERE id = ?", instance_id)[0]["result_json"])
        assert result["payload"] == [values.loads(applied[instance_id]["payload_json"])]


@pytest.mark.timeout(120)
def test_signals_racing_sigkill_lose_nothing_and_apply_once(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Signal files dropped while the agent starts or runs, and a SIGKILL at a random
    moment among them: after the restarts every signal is applied exactly once, to its
    instance, and the instance sees its payload (through the recover block when the
    kill interrupted the resumed run)."""
    seed = int(os.environ.get(SEED_ENV) or random.randrange(2**32))
    rng = random.Random(seed)
    print(f"\n{SEED_ENV}={seed}")
    book = tmp_path / "ledger.txt"
    # After the signal, the resumed run naps before its next checkpoint: a kill there
    # interrupts it, and the recovery must still see the signal's payload.
    definition = write_definition(ledger_process("race", 2, pause_at="cp1"))
    agent = agents.start()
    rounds, each = 8, 4
    ids = start_paused(procctl, definition, book, rounds * each, nap=0.3)
    agents.kill(agent)
    directory = procctl.home / "signals"
    sent: dict[str, dict[str, object]] = {}
    for round_ in range(rounds):
        agent = agents.spawn()
        if rng.random() < 0.5:
            agents.wait_ready(agent)
        for n, instance_id in enumerate(ids[round_ * each:(round_ + 1) * each]):
            document: dict[str, object] = {"correlation_id": f"{instance_id}-cp1",
                                           "payload": {"round": round_, "n": n}}
            if n % 2:
                document["signal_id"] = f"race-{instance_id}"
            sent[instance_id] = document
            write_signal(directory, f"race-{instance_id}", document)
            time.sleep(rng.uniform(0.0, 0.1))
        time.sleep(rng.uniform(0.0, 0.3))
        agents.kill(agent)
        assert integrity(procctl.home) == "ok"

    agent = agents.start()
    wait_for(lambda: not signal_files(directory), timeout=30, message="no signal file left")
    wait_for(lambda: all(s == "completed" for s in statuses(procctl.home, ids).values()),
             timeout=60, message="every instance to complete")
    assert agents.stop(agent) == 0

    assert sorted(filed(directory, "processed")) == sorted(f"race-{i}.json" for i in ids)
    assert filed(directory, "rejected") == []
    rows = query(procctl.home, "SELECT instance_id, status FROM signals")
    applied = Counter(str(r["instance_id"]) for r in rows if r["status"] == "applied")
    assert applied == Counter(ids)  # each exactly once
    entries = ledger(book)
    recovered = 0
    for instance_id in ids:
        mine = [w for w in entries if w[0] == instance_id]
        check_ledger_order(instance_id, mine)
        recovered += "recover-cp1" in [w[1] for w in mine]
        assert [w[1] for w in mine].count("commit-cp2") <= 1
        result = values.loads(query(procctl.home, "SELECT result_json FROM instances"
                                    " WHERE id = ?", instance_id)[0]["result_json"])
        assert result["payload"] == [sent[instance_id]["payload"], None], (instance_id, mine)
    print(f"{len(ids)} signals, {recovered} resumed runs interrupted and recovered")
