"""The backends the contract suite runs on, and the few steps its tests share.

A new backend joins the suite with one more entry in BACKENDS: a function that opens a
store of that backend for a test (a second call opens a second connection to the same
store, for the races). Tests use the StoreContract's methods only.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from procctl.agent.decisions import delivery_write
from procctl.store import StoreContract, open_store
from procctl.store.records import CheckpointRecord, Delivery

#: opens a connection to the test's store (the same one on every call)
Opener = Callable[[], StoreContract]


def sqlite_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    path = tmp_path / "procctl.db"
    return lambda: open_store(path)


def postgres_backend(tmp_path: Path, request: pytest.FixtureRequest) -> Opener:
    """A fresh database on the test session's throwaway server (tests/pg_server.py)."""
    url: str = request.getfixturevalue("pg_url")
    return lambda: open_store(tmp_path / "unused.db", url=url)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], Opener]] = {
    "sqlite": sqlite_backend, "postgres": postgres_backend}

DEFINITION = "d" * 64


def running(store: StoreContract, instance_id: str) -> None:
    store.put_definition(DEFINITION, "contract", "1", None, "source")
    store.create_instance(instance_id, DEFINITION, "contract", "1", "{}", "{}")


def checkpointed(store: StoreContract, instance_id: str, correlation_id: str, *,
                 expires_at: str | None = None, pausing: bool = False) -> CheckpointRecord:
    running(store, instance_id)
    return store.save_checkpoint(instance_id, "gate", correlation_id, '{"at": "gate"}',
                                 expires_at=expires_at, pausing=pausing)


def paused(store: StoreContract, instance_id: str, correlation_id: str, *,
           expires_at: str | None = None) -> None:
    checkpointed(store, instance_id, correlation_id, expires_at=expires_at)
    assert store.pause_instance(instance_id, commit_value_json=None, resume_at=None) is None


def deliver(store: StoreContract, correlation_id: str, **options: Any) -> Delivery:
    """A signal to `correlation_id`, decided as the agent decides (the store reads what
    the signal finds and writes the decision, in one transaction)."""
    return store.deliver_signal(correlation_id=correlation_id, source="contract",
                                decide=delivery_write, **options)


#: a lease no test outlives (seconds)
LONG_LEASE = 120.0
#: the most a thread of `in_lockstep` waits (seconds, at random) after each release
JITTER = 0.002


def join_as_agent(backend: Opener, agent_id: str, *, lease: float = LONG_LEASE,
                  pool: str = "default") -> StoreContract:
    """A new connection that joins the store as agent `agent_id` with a lease of `lease`
    seconds: its writes are that agent's (and, on a shared store, fenced by its lease)."""
    store = backend()
    store.register_agent(agent_id, host="contract-host", pool=pool,
                         home=f"/homes/{agent_id}", pid=os.getpid(), version="contract",
                         lease_seconds=lease)
    return store


def wait_lease_out(store: StoreContract, agent_id: str, timeout: float = 10.0) -> None:
    """Poll `list_agents` (the store's clock) until `agent_id` is listed as not alive."""
    deadline = time.monotonic() + timeout
    while any(a.alive for a in store.list_agents() if a.id == agent_id):
        assert time.monotonic() < deadline, f"agent {agent_id}'s lease did not run out"
        time.sleep(0.02)


def in_lockstep(rounds: int, *actions: Callable[[int], Any],
                timeout: float = 60.0) -> list[list[Any]]:
    """Run every action once per round, each on a thread of its own for all rounds; a
    barrier releases the threads together at each round, then each waits up to JITTER
    seconds at random, so the rounds try many interleavings. Returns, per round, what each
    action returned (or the exception it raised)."""
    barrier = threading.Barrier(len(actions))
    results: list[list[Any]] = [[None] * len(actions) for _ in range(rounds)]

    def run(index: int, action: Callable[[int], Any]) -> None:
        for n in range(rounds):
            barrier.wait(timeout=timeout)
            time.sleep(random.random() * JITTER)
            try:
                results[n][index] = action(n)
            except Exception as exc:
                results[n][index] = exc

    threads = [threading.Thread(target=run, args=(i, a), daemon=True)
               for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
        assert not thread.is_alive(), "a thread of in_lockstep is stuck"
    return results
