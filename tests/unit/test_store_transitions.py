"""One transition, one transaction: the store's transitions write their events with them,
queued events ride along with the next transaction, and a pausing checkpoint is
recorded as such (on a real SQLite file, commits counted by the store)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from procctl.agent.decisions import delivery_write
from procctl.store import Store
from procctl.store.clock import utc_after, utc_now
from procctl.store.errors import Conflict, NotFound

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    return store


def running(store: Store, instance_id: str) -> None:
    store.create_instance(instance_id, "sha", "p", "1", "{}", "{}")


def kinds(store: Store, instance_id: str) -> list[str]:
    return [event.kind for event in store.events(instance_id)]


def event(instance_id: str, kind: str) -> tuple[str, str, str, str, None, None]:
    return (instance_id, utc_now(), kind, "{}", None, None)


def test_queued_events_ride_along_with_the_next_transaction(store: Store) -> None:
    running(store, "i1")
    before = store.commits
    store.queue_events([event("i1", "step_started"), event("i1", "step_finished")])
    assert kinds(store, "i1") == []  # not written yet: no commit of their own
    store.save_checkpoint("i1", "cp", "c-1", "snap", expires_at=None)
    assert store.commits == before + 1
    assert kinds(store, "i1") == ["step_started", "step_finished"]


def test_queued_events_survive_a_transaction_that_rolls_back(store: Store) -> None:
    running(store, "i1")
    store.queue_events([event("i1", "step_started")])
    with pytest.raises(NotFound):
        store.pause_instance("i1", commit_value_json=None, resume_at=None)  # no checkpoint
    assert kinds(store, "i1") == []
    assert store.queued_events_due_in(0) is not None
    store.write_queued_events()
    assert kinds(store, "i1") == ["step_started"]
    assert store.queued_events_due_in(0) is None


def test_a_pause_that_takes_a_held_signal_is_one_commit(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "gate-1", "snap", expires_at=None, pausing=True)
    held = store.deliver_signal(decide=delivery_write,
                                correlation_id="gate-1", source="file:a.json",
                                payload_json='{"ok": true}', hold_seconds=0)
    assert held.outcome == "pending" and held.signal.instance_id == "i1"
    # held for the instance about to pause: the buffer does not expire it
    assert store.expire_pending_signals(utc_after(5)) == 0
    before = store.commits
    taken = store.pause_instance(
        "i1", commit_value_json='"asked"', resume_at=None,
        events=[event("i1", "instance_paused")],
        applied_event=lambda signal: json.dumps({"signal_id": signal.id}))
    assert store.commits == before + 1
    assert taken is not None and taken.status == "applied"
    assert kinds(store, "i1") == ["instance_paused", "signal_applied"]
    checkpoint = store.get_checkpoint("i1")
    assert checkpoint.pausing == 0 and checkpoint.iteration == 1
    assert store.get_instance("i1").status == "running"


def test_a_delivered_signal_writes_its_event_in_its_transaction(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "gate-1", "snap", expires_at=None, pausing=True)
    store.pause_instance("i1", commit_value_json=None, resume_at=None)
    before = store.commits
    delivery = store.deliver_signal(decide=delivery_write, correlation_id="gate-1", source="cli",
                                    applied_event='{"source": "cli"}')
    assert delivery.outcome == "applied" and store.commits == before + 1
    assert kinds(store, "i1")[-1] == "signal_applied"


def test_a_resume_writes_its_event_with_the_iteration(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "c-1", "snap", expires_at=None)
    store.pause_instance("i1", commit_value_json=None, resume_at=None)
    before = store.commits
    taken = store.take_resume("i1", event=("scheduled_resume", {"iteration": None}))
    assert store.commits == before + 1
    [last] = [e for e in store.events("i1") if e.kind == "scheduled_resume"]
    assert json.loads(last.data_json) == {"iteration": taken.iteration} == {"iteration": 1}


def test_a_pausing_checkpoint_that_never_paused_is_recovered_in_place(store: Store) -> None:
    running(store, "i1")
    expires = utc_after(3600)
    store.save_checkpoint("i1", "cp", "gate-1", "snap", expires_at=expires, pausing=True)
    taken = store.mark_recovered("i1", {"pause_again": True})
    assert taken.pausing == 1 and taken.iteration == 0 and taken.expires_at == expires
    assert store.get_instance("i1").status == "running"
    assert kinds(store, "i1") == ["instance_recovered"]
    store.pause_instance("i1", commit_value_json=None, resume_at=None)
    with pytest.raises(Conflict):
        store.mark_recovered("i1", {})


def test_an_idle_tick_commits_nothing(store: Store) -> None:
    before = store.commits
    assert store.expire_pending_signals(utc_now()) == 0
    assert store.commits == before


def test_a_schema_1_store_migrates_to_pausing_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    shutil.copy(DATA / "procctl-schema1.db", path)
    Store(path).close()
    db = sqlite3.connect(path)
    columns = {row[1]: row[4] for row in db.execute("PRAGMA table_info(checkpoints)")}
    db.close()
    assert columns["pausing"] == "0"
