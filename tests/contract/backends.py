"""The backends the contract suite runs on, and the few steps its tests share.

A new backend joins the suite with one more entry in BACKENDS: a function that opens a
store of that backend for a test (a second call opens a second connection to the same
store, for the races). Tests use the StoreContract's methods only.
"""

from __future__ import annotations

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
