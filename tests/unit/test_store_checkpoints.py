"""Checkpoint and signal transitions in the store, on a real SQLite file."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from procctl.agent.decisions import delivery_write
from procctl.store import Store
from procctl.store.clock import utc_after, utc_now
from procctl.store.errors import Conflict


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    return store


def running(store: Store, instance_id: str) -> None:
    store.create_instance(instance_id, "sha", "p", "1", "{}", "{}")


def paused(store: Store, instance_id: str, correlation_id: str, **kwargs: object) -> None:
    running(store, instance_id)
    store.save_checkpoint(instance_id, "cp", correlation_id, '{"snap": 1}',
                          expires_at=kwargs.get("expires_at"))  # type: ignore[arg-type]
    store.pause_instance(instance_id, commit_value_json="false", resume_at=None)


def test_checkpoint_replaces_the_previous_one(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "a", "c-a", "one", expires_at=None)
    store.save_checkpoint("i1", "b", "c-b", "two", expires_at=None)
    checkpoint = store.get_checkpoint("i1")
    assert (checkpoint.step_id, checkpoint.snapshot_json, checkpoint.size) == ("b", "two", 3)
    assert store.checkpoint_by_correlation("c-a") is None


def test_correlation_clash_names_the_other_instance(store: Store) -> None:
    running(store, "i1")
    running(store, "i2")
    store.save_checkpoint("i1", "cp", "same", "x", expires_at=None)
    with pytest.raises(Conflict, match="already held by instance i1"):
        store.save_checkpoint("i2", "cp", "same", "y", expires_at=None)


def test_group_commit_keeps_each_outcome_apart(store: Store) -> None:
    for name in ("i1", "i2", "i3"):
        running(store, name)
    outcomes = store.save_checkpoints([
        {"instance_id": "i1", "step_id": "cp", "correlation_id": "c1", "snapshot_json": "a",
         "expires_at": None},
        {"instance_id": "i2", "step_id": "cp", "correlation_id": "c1", "snapshot_json": "b",
         "expires_at": None},
        {"instance_id": "i3", "step_id": "cp", "correlation_id": "c3", "snapshot_json": "c",
         "expires_at": None},
    ])
    assert isinstance(outcomes[1], Conflict)
    assert store.get_checkpoint("i1").snapshot_json == "a"
    assert store.get_checkpoint("i3").snapshot_json == "c"
    assert store.find_checkpoint("i2") is None


def test_signal_resumes_a_paused_instance_once(store: Store) -> None:
    paused(store, "i1", "order-1")
    first = store.deliver_signal(decide=delivery_write,
                                 correlation_id="order-1", source="cli", signal_id="s1",
                                 payload_json='{"ok": true}')
    assert first.outcome == "applied"
    assert first.checkpoint is not None and first.checkpoint.iteration == 1
    assert store.get_instance("i1").status == "running"
    again = store.deliver_signal(decide=delivery_write,
                                 correlation_id="order-1", source="cli", signal_id="s2")
    assert (again.outcome, again.reason) == ("rejected", "instance i1 is running, not paused")
    duplicate = store.deliver_signal(decide=delivery_write,
                                     correlation_id="order-1", source="cli", signal_id="s1")
    assert duplicate.outcome == "duplicate"
    assert "already received" in str(duplicate.reason)


def test_concurrent_signals_from_many_connections_apply_once(store: Store,
                                                             tmp_path: Path) -> None:
    paused(store, "i1", "order-1")
    outcomes: list[str] = []

    def send(number: int) -> None:
        own = Store(tmp_path / "procctl.db")
        outcomes.append(own.deliver_signal(decide=delivery_write,
                                           correlation_id="order-1", source="cli",
                                           signal_id=f"s{number}").outcome)
        own.close()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["applied"] + ["rejected"] * 9


def test_early_signal_is_held_and_delivered_when_the_checkpoint_pauses(store: Store) -> None:
    early = store.deliver_signal(decide=delivery_write,
                                 correlation_id="late-1", source="file:x.json",
                                 payload_json='{"v": 1}', hold_seconds=60)
    assert early.outcome == "pending"
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "late-1", "snap", expires_at=None)
    delivered = store.pause_instance("i1", commit_value_json=None, resume_at=None)
    assert delivered is not None and delivered.payload_json == '{"v": 1}'
    assert store.get_instance("i1").status == "running"  # never seen paused
    assert store.list_signals(("pending",)) == []


def test_pending_signal_past_its_buffer_becomes_unmatched(store: Store) -> None:
    store.deliver_signal(decide=delivery_write,
                         correlation_id="nobody", source="cli", hold_seconds=0)
    assert store.expire_pending_signals(utc_after(1)) == 1
    [record] = store.list_signals(("unmatched",))
    assert "buffer time" in str(record.reason)


def test_expiry_fails_the_instance_and_refuses_later_signals(store: Store) -> None:
    paused(store, "i1", "old", expires_at=utc_after(-1))
    assert store.expired(utc_now()) == [("i1", None)]
    assert store.expire_instance("i1", json.dumps({"kind": "expired"}), utc_now())
    assert store.get_instance("i1").status == "failed"
    assert store.find_checkpoint("i1") is None
    late = store.deliver_signal(decide=delivery_write, correlation_id="old", source="cli")
    assert late.outcome == "rejected" and str(late.reason).startswith("expired")


def test_a_failed_instance_with_a_checkpoint_can_be_retried(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "retry-me", "snap", expires_at=None)
    store.finish_instance("i1", "failed", error_json="{}")
    delivery = store.deliver_signal(decide=delivery_write, correlation_id="retry-me", source="cli")
    assert (delivery.outcome, delivery.from_status) == ("applied", "failed")
    assert store.get_instance("i1").status == "running"


def test_completion_discards_the_snapshot(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "done", "snap", expires_at=None)
    store.finish_instance("i1", "completed")
    assert store.find_checkpoint("i1") is None
    assert store.deliver_signal(decide=delivery_write,
                                correlation_id="done", source="cli").outcome == "rejected"


def test_snapshot_edit_runs_inside_the_delivery(store: Store) -> None:
    paused(store, "i1", "edit-me")
    delivery = store.deliver_signal(decide=delivery_write, correlation_id="edit-me", source="cli",
                                    edit_snapshot=lambda text: text.replace("1", "2"))
    assert delivery.checkpoint is not None
    assert store.get_checkpoint("i1").snapshot_json == '{"snap": 2}'


def test_due_scheduled_resumes(store: Store) -> None:
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "tick", "snap", expires_at=None)
    store.pause_instance("i1", commit_value_json=None, resume_at=utc_after(-1))
    assert store.due_resumes(utc_now()) == ["i1"]
    assert store.take_resume("i1").iteration == 1
    assert store.due_resumes(utc_now()) == []
    with pytest.raises(Conflict):
        store.take_resume("i1")


def test_a_held_signal_brings_its_variable_edits_to_the_pause(store: Store) -> None:
    store.deliver_signal(decide=delivery_write,
                         correlation_id="later", source="cli", set_json='{"amount": 99}',
                         hold_seconds=60)
    running(store, "i1")
    store.save_checkpoint("i1", "cp", "later", '{"amount": 1}', expires_at=None)

    def apply_set(snapshot: str, set_json: str) -> str:
        return json.dumps({**json.loads(snapshot), **json.loads(set_json)})

    delivered = store.pause_instance("i1", commit_value_json=None, resume_at=None,
                                     apply_set=apply_set)
    assert delivered is not None
    assert json.loads(store.get_checkpoint("i1").snapshot_json) == {"amount": 99}
