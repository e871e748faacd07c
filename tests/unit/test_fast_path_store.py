"""The group commit's SQL (store/checkpoint_writes.py), on a real SQLite file: a
checkpoint is an UPSERT that keeps its row, a batch is a few statements whatever its
size, and the outcomes are those of writing the batch's checkpoints one by one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from procctl.agent.decisions import delivery_write
from procctl.store import Store
from procctl.store.clock import utc_now
from procctl.store.errors import Conflict


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    return store


def running(store: Store, *instance_ids: str) -> None:
    for instance_id in instance_ids:
        store.create_instance(instance_id, "sha", "p", "1", "{}", "{}")


def item(instance_id: str, correlation_id: str, snapshot: str = "{}",
         **more: Any) -> dict[str, Any]:
    return {"instance_id": instance_id, "step_id": "cp", "correlation_id": correlation_id,
            "snapshot_json": snapshot, "expires_at": None, **more}


def rowid(store: Store, instance_id: str) -> int:
    return int(store._db.execute("SELECT rowid FROM checkpoints WHERE instance_id = ?",
                                 (instance_id,)).fetchone()[0])


def statements(store: Store) -> list[str]:
    seen: list[str] = []
    store._db.set_trace_callback(seen.append)
    return seen


def test_a_new_checkpoint_keeps_the_row_and_resets_what_replace_reset(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "a", "c-a", '{"n": 1}', expires_at=None, pausing=True)
    first = rowid(store, "i1")
    store.pause_instance("i1", commit_value_json='"kept"', resume_at="2999-01-01")
    store.deliver_signal(decide=delivery_write, correlation_id="c-a", source="cli",
                         signal_id="s1", payload_json='{"ok": true}')
    resumed = store.get_checkpoint("i1")
    assert (resumed.iteration, resumed.commit_value_json) == (1, '"kept"')
    assert resumed.resume_payload_json == '{"ok": true}'

    store.save_checkpoint("i1", "b", "c-b", '{"n": 22}', expires_at="2999-02-02",
                          on_expire_json='{"action": "resume"}')
    saved = store.get_checkpoint("i1")
    assert rowid(store, "i1") == first
    assert (saved.step_id, saved.correlation_id, saved.snapshot_json, saved.size) == (
        "b", "c-b", '{"n": 22}', 9)
    assert (saved.iteration, saved.commit_value_json, saved.resume_payload_json,
            saved.resume_at, saved.pausing) == (0, None, None, None, 0)
    assert (saved.expires_at, saved.on_expire_json) == ("2999-02-02", '{"action": "resume"}')
    assert store.checkpoint_by_correlation("c-a") is None
    assert store.get_instance("i1").correlation_id == "c-b"


def test_one_checkpoint_is_one_upsert_and_no_savepoint(store: Store) -> None:
    running(store, "i1")
    seen = statements(store)
    store.save_checkpoint("i1", "a", "c-a", "{}", expires_at=None)
    writes = [s for s in seen if s.split()[0] in ("INSERT", "UPDATE", "DELETE", "REPLACE")]
    assert [s.split()[0] for s in writes] == ["UPDATE", "INSERT"]
    assert "ON CONFLICT(instance_id) DO UPDATE" in writes[1]
    assert not any("SAVEPOINT" in s or "REPLACE" in s for s in seen)


def test_a_batch_takes_the_same_statements_for_two_or_fifty(store: Store) -> None:
    counts = []
    for size in (2, 50):
        ids = [f"n{size}-{n}" for n in range(size)]
        running(store, *ids)
        store.queue_events([(i, utc_now(), "step_started", "{}", "cp", "cp") for i in ids])
        seen = statements(store)
        outcomes = store.save_checkpoints([item(i, f"c-{i}") for i in ids])
        store._db.set_trace_callback(None)
        assert not any(isinstance(o, Exception) for o in outcomes)
        counts.append(len(seen))
        assert all(store.get_checkpoint(i).correlation_id == f"c-{i}" for i in ids)
        assert all([e.kind for e in store.events(i)] == ["step_started"] for i in ids)
    assert counts[0] == counts[1] <= 7  # BEGIN, events, 2 checks, 2 writes, COMMIT


def test_a_batch_is_decided_as_if_written_one_by_one(store: Store) -> None:
    running(store, "a", "b", "c", "d")
    store.save_checkpoint("a", "cp", "x", "{}", expires_at=None)
    store.save_checkpoint("c", "cp", "z", "{}", expires_at=None)
    store.finish_instance("d", "completed")
    outcomes = store.save_checkpoints([
        item("b", "z"),         # c still holds z: refused
        item("a", "y"),         # a lets x go ...
        item("b", "x"),         # ... so b may take it after a
        item("c", "y"),         # a took y first in this batch: refused
        item("d", "w"),         # not running: refused
        item("c", "z", "new"),  # its own correlation ID again: fine
    ])
    conflicts = [str(o) if isinstance(o, Conflict) else None for o in outcomes]
    assert conflicts[0] is not None and "held by instance c" in conflicts[0]
    assert conflicts[3] is not None and "held by instance a" in conflicts[3]
    assert conflicts[4] is not None and "not running" in conflicts[4]
    assert [conflicts[i] for i in (1, 2, 5)] == [None, None, None]
    assert store.get_checkpoint("a").correlation_id == "y"
    assert store.get_checkpoint("b").correlation_id == "x"
    assert store.get_checkpoint("c").snapshot_json == "new"
    assert store.find_checkpoint("d") is None
    assert store.get_instance("b").correlation_id == "x"


def test_an_instance_named_twice_in_a_batch_keeps_its_last_checkpoint(store: Store) -> None:
    running(store, "a")
    outcomes = store.save_checkpoints([item("a", "first", "1"), item("a", "second", "2")])
    assert not any(isinstance(o, Exception) for o in outcomes)
    assert store.get_checkpoint("a").snapshot_json == "2"
    assert store.get_instance("a").correlation_id == "second"
    assert store.checkpoint_by_correlation("first") is None


def test_many_events_keep_their_order(store: Store) -> None:
    running(store, "i1")
    rows = [("i1", utc_now(), f"k{n}", f'{{"n": {n}}}', None, None) for n in range(150)]
    store.add_events(rows)
    events = store.events("i1")
    assert [e.kind for e in events] == [f"k{n}" for n in range(150)]
    assert [e.id for e in events] == sorted(e.id for e in events)
