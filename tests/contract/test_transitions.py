"""The store contract, transition by transition, through StoreContract's methods only:
what each transition does, and when it is refused. Runs for every backend."""

from __future__ import annotations

import json

import pytest
from contract.backends import checkpointed, deliver, paused, running

from procctl.store import StoreContract
from procctl.store.clock import utc_after, utc_now
from procctl.store.errors import Conflict, NotFound
from procctl.store.records import TERMINAL_STATUSES, SignalStatus, Status

EXPIRED = json.dumps({"kind": "expired", "message": "outlived its TTL"})


def status(store: StoreContract, instance_id: str) -> Status:
    return store.get_instance(instance_id).status


def test_start_creates_a_running_instance(store: StoreContract) -> None:
    running(store, "i1")
    record = store.get_instance("i1")
    assert record.status is Status.RUNNING
    assert store.instances_with_status(Status.RUNNING) == ["i1"]
    assert store.count_by_status() == {Status.RUNNING: 1}
    assert [r.id for r in store.list_instances(status=Status.RUNNING)] == ["i1"]
    assert store.list_instances(status=Status.PAUSED) == []


def test_a_child_is_created_once_per_call(store: StoreContract) -> None:
    running(store, "parent")
    first = store.create_instance("c1", "d" * 64, "contract", "1", "{}", "{}", "parent", "k")
    again = store.create_instance("c2", "d" * 64, "contract", "1", "{}", "{}", "parent", "k")
    assert first.id == again.id == "c1"
    assert store.find_child("parent", "k") == first


def test_a_checkpoint_replaces_the_previous_one(store: StoreContract) -> None:
    checkpointed(store, "i1", "first")
    store.save_checkpoint("i1", "second-step", "second", '{"n": 2}', expires_at=None)
    checkpoint = store.get_checkpoint("i1")
    assert (checkpoint.step_id, checkpoint.correlation_id) == ("second-step", "second")
    assert store.checkpoint_by_correlation("first") is None
    assert store.get_instance("i1").correlation_id == "second"


def test_a_correlation_id_is_held_by_one_instance(store: StoreContract) -> None:
    checkpointed(store, "i1", "shared")
    running(store, "i2")
    with pytest.raises(Conflict):
        store.save_checkpoint("i2", "gate", "shared", "{}", expires_at=None)
    assert store.find_checkpoint("i2") is None


def test_pause_only_from_running(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    assert status(store, "i1") is Status.PAUSED
    assert store.count_paused() == 1
    assert [row.instance.id for row in store.list_paused()] == ["i1"]
    with pytest.raises(Conflict):
        store.pause_instance("i1", commit_value_json=None, resume_at=None)
    with pytest.raises(Conflict):  # only a running instance saves a checkpoint
        store.save_checkpoint("i1", "gate", "c1", "{}", expires_at=None)


def test_resume_only_from_paused(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    taken = store.take_resume("i1", Status.PAUSED, payload_json='{"ok": true}')
    assert taken.iteration == 1 and taken.resume_payload_json == '{"ok": true}'
    assert status(store, "i1") is Status.RUNNING
    with pytest.raises(Conflict):
        store.take_resume("i1", Status.PAUSED)


def test_a_pause_takes_the_signal_held_for_it(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    held = deliver(store, "c1", payload_json='{"v": 1}')
    assert held.outcome == SignalStatus.PENDING  # saved, not paused yet: held
    assert status(store, "i1") is Status.RUNNING
    taken = store.pause_instance("i1", commit_value_json=None, resume_at=None)
    assert taken is not None and taken.status == SignalStatus.APPLIED
    assert taken.instance_id == "i1"
    assert status(store, "i1") is Status.RUNNING  # straight back to running
    assert store.get_checkpoint("i1").resume_payload_json == '{"v": 1}'
    assert store.list_signals((SignalStatus.PENDING,)) == []


def test_deliver_applies_to_a_paused_instance(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    delivery = deliver(store, "c1", signal_id="s1", payload_json='{"v": 2}')
    assert delivery.outcome == SignalStatus.APPLIED
    assert delivery.instance_id == "i1" and delivery.from_status == Status.PAUSED
    assert delivery.checkpoint is not None and delivery.checkpoint.iteration == 1
    assert status(store, "i1") is Status.RUNNING
    assert store.signal_outcome("s1") is not None
    assert store.first_receipt("s1") is not None


def test_deliver_holds_a_signal_nobody_waits_for(store: StoreContract) -> None:
    delivery = deliver(store, "nobody", hold_seconds=60)
    assert delivery.outcome == SignalStatus.PENDING
    [listed] = store.list_signals((SignalStatus.PENDING,))
    assert listed.hold_until is not None and listed.hold_until > utc_now()
    # past its hold time it is unmatched (and still listed)
    assert store.expire_pending_signals(utc_after(3600)) == 1
    [unmatched] = store.list_signals((SignalStatus.UNMATCHED,))
    assert unmatched.id == listed.id


def test_a_held_signal_is_applied_when_its_instance_pauses(store: StoreContract) -> None:
    assert deliver(store, "c1").outcome == SignalStatus.PENDING
    checkpointed(store, "i1", "c1")
    taken = store.pause_instance("i1", commit_value_json=None, resume_at=None)
    assert taken is not None and taken.status == SignalStatus.APPLIED


def test_the_same_signal_id_twice_is_a_duplicate(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    assert deliver(store, "c1", signal_id="s1").outcome == SignalStatus.APPLIED
    again = deliver(store, "c1", signal_id="s1")
    assert again.outcome == SignalStatus.DUPLICATE
    assert again.reason is not None and "s1" in again.reason
    assert store.get_checkpoint("i1").iteration == 1  # applied once


def test_deliver_refuses_a_running_instance_past_its_checkpoint(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    deliver(store, "c1")
    refused = deliver(store, "c1")
    assert refused.outcome == SignalStatus.REJECTED
    assert refused.reason == "instance i1 is running, not paused"


def test_deliver_refuses_a_completed_instance(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    store.take_resume("i1", Status.PAUSED)
    store.finish_instance("i1", Status.COMPLETED, result_json="1")
    refused = deliver(store, "c1")
    assert refused.outcome == SignalStatus.REJECTED
    assert refused.reason is not None and "completed" in refused.reason


def test_deliver_refuses_an_expired_checkpoint(store: StoreContract) -> None:
    paused(store, "i1", "c1", expires_at=utc_after(-1))
    refused = deliver(store, "c1")
    assert refused.outcome == SignalStatus.REJECTED
    assert refused.reason is not None and refused.reason.startswith("expired")
    assert status(store, "i1") is Status.PAUSED


def test_expire_only_past_the_ttl(store: StoreContract) -> None:
    paused(store, "i1", "c1", expires_at=utc_after(3600))
    assert store.expired(utc_now()) == []
    assert store.expire_instance("i1", EXPIRED, utc_now()) is False
    assert status(store, "i1") is Status.PAUSED
    later = utc_after(7200)
    assert [i for i, _ in store.expired(later)] == ["i1"]
    expired = ("i1", later, "instance_expired", EXPIRED, None, None)
    assert store.expire_instance("i1", EXPIRED, later, events=[expired]) is True
    record = store.get_instance("i1")
    assert record.status is Status.FAILED and record.error_json == EXPIRED
    assert store.find_checkpoint("i1") is None  # the snapshot is discarded
    assert "instance_expired" in [e.kind for e in store.events("i1")]
    assert store.expire_instance("i1", EXPIRED, later, events=[expired]) is False  # once
    assert [e.kind for e in store.events("i1")].count("instance_expired") == 1


def test_fail_keeps_the_checkpoint_for_a_retry(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    store.finish_instance("i1", Status.FAILED, error_json='{"kind": "step"}')
    record = store.get_instance("i1")
    assert record.status is Status.FAILED and record.ended_at is not None
    assert store.find_checkpoint("i1") is not None
    with pytest.raises(Conflict):  # a terminal status is left only by a retry
        store.finish_instance("i1", Status.COMPLETED)


def test_retry_resumes_a_failed_instance_from_its_checkpoint(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    store.finish_instance("i1", Status.FAILED, error_json='{"kind": "step"}')
    delivery = deliver(store, "c1")
    assert delivery.outcome == SignalStatus.APPLIED
    assert delivery.from_status == Status.FAILED
    record = store.get_instance("i1")
    assert record.status is Status.RUNNING and record.error_json is None


def test_complete_deletes_the_snapshot_and_keeps_the_summary(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    store.take_resume("i1", Status.PAUSED)
    store.finish_instance("i1", Status.COMPLETED, result_json='{"total": 3}')
    record = store.get_instance("i1")
    assert record.status is Status.COMPLETED and record.result_json == '{"total": 3}'
    assert record.ended_at is not None and record.process_name == "contract"
    assert store.find_checkpoint("i1") is None
    with pytest.raises(NotFound):
        store.get_checkpoint("i1")


def test_finish_takes_a_terminal_status_only(store: StoreContract) -> None:
    running(store, "i1")
    with pytest.raises(ValueError):
        store.finish_instance("i1", Status.PAUSED)
    assert {Status.COMPLETED, Status.FAILED, Status.CANCELLED} == set(TERMINAL_STATUSES)


def test_hold_pauses_without_a_checkpoint(store: StoreContract) -> None:
    running(store, "i1")
    store.hold_instance("i1", '{"kind": "crash"}')
    record = store.get_instance("i1")
    assert record.status is Status.PAUSED and record.error_json == '{"kind": "crash"}'
    with pytest.raises(Conflict):
        store.hold_instance("i1", "{}")


def test_restart_runs_from_the_beginning(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    store.finish_instance("i1", Status.FAILED, error_json="{}")
    store.restart_instance("i1", (Status.FAILED, Status.PAUSED))
    record = store.get_instance("i1")
    assert record.status is Status.RUNNING and record.correlation_id is None
    assert store.find_checkpoint("i1") is None
    with pytest.raises(Conflict):
        store.restart_instance("i1", (Status.FAILED, Status.PAUSED))


def test_recovery_of_a_pausing_checkpoint(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1", pausing=True)
    assert store.mark_recovered("i1", {"from": "contract"}).pausing
    assert "instance_recovered" in [e.kind for e in store.events("i1")]
    checkpointed(store, "i2", "c2")
    with pytest.raises(Conflict):
        store.mark_recovered("i2", {})


def test_due_resumes_are_paused_with_a_resume_time_past(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    store.pause_instance("i1", commit_value_json=None, resume_at=utc_after(-1))
    assert store.due_resumes(utc_now()) == ["i1"]
    store.take_resume("i1", Status.PAUSED)
    assert store.due_resumes(utc_now()) == []


def test_queued_events_ride_with_the_next_transition(store: StoreContract) -> None:
    running(store, "i1")
    store.queue_events([("i1", utc_now(), "step_started", "{}", "a", "a")])
    assert store.events("i1") == []
    before = store.commits
    store.hold_instance("i1", "{}")
    assert store.commits == before + 1
    assert [e.kind for e in store.events("i1")] == ["step_started"]


def test_a_pause_keeps_its_commit_value_and_resume_time(store: StoreContract) -> None:
    checkpointed(store, "i1", "c1")
    at = utc_after(60)
    store.pause_instance("i1", commit_value_json='{"ticket": 7}', resume_at=at)
    checkpoint = store.get_checkpoint("i1")
    assert (checkpoint.commit_value_json, checkpoint.resume_at) == ('{"ticket": 7}', at)
    assert store.paused_correlation_ids() == ["c1"]
    assert [row.checkpoint.correlation_id for row in store.list_paused()] == ["c1"]
    assert store.list_paused(process_name="another") == []


def test_a_delivery_edits_the_snapshot_it_resumes(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    delivery = deliver(store, "c1", set_json='{"n": 1}',
                       edit_snapshot=lambda text: text.replace("gate", "edited"))
    assert delivery.checkpoint is not None and "edited" in delivery.checkpoint.snapshot_json
    assert "edited" in store.get_checkpoint("i1").snapshot_json


def test_what_a_signal_would_find(store: StoreContract) -> None:
    nobody = store.resume_target("nobody")
    assert (nobody.holder, nobody.last) == (None, None)
    checkpointed(store, "i1", "c1")
    before = store.resume_target("c1")
    assert before.holder is not None and before.last is None
    assert (before.holder.instance_id, before.holder.status) == ("i1", Status.RUNNING)
    store.pause_instance("i1", commit_value_json=None, resume_at=None)
    after = store.resume_target("c1").holder
    assert after is not None and after.status == Status.PAUSED


def test_what_a_signal_would_find_after_its_holder_is_gone(store: StoreContract) -> None:
    paused(store, "i1", "c1", expires_at=utc_after(3600))
    assert store.expire_instance("i1", EXPIRED, utc_after(7200))
    gone = store.resume_target("c1")
    assert gone.holder is None and gone.last is not None
    assert (gone.last.instance_id, gone.last.status) == ("i1", Status.FAILED)
    assert gone.last.error_json is not None and json.loads(gone.last.error_json) == \
        json.loads(EXPIRED)


def test_a_signal_that_could_not_be_read_is_kept_rejected(store: StoreContract) -> None:
    since = utc_now()
    kept = store.record_rejected_signal("file:bad.json", "not JSON")
    assert kept.status == SignalStatus.REJECTED and kept.reason == "not JSON"
    found = store.file_rejection("bad.json", since)
    assert found is not None and found.id == kept.id
    assert [s.id for s in store.list_signals((SignalStatus.REJECTED,))] == [kept.id]


def test_a_refused_transition_writes_nothing(store: StoreContract) -> None:
    paused(store, "i1", "c1")
    store.queue_events([("i1", utc_now(), "step_started", "{}", "a", "a")])
    with pytest.raises(Conflict):  # already paused: its events are not written...
        store.pause_instance("i1", commit_value_json=None, resume_at=None,
                             events=[("i1", utc_now(), "instance_paused", "{}", None, None)])
    assert "step_started" not in [e.kind for e in store.events("i1")]
    store.take_resume("i1", Status.PAUSED)  # ...and the queued ones ride with the next
    assert [e.kind for e in store.events("i1")].count("step_started") == 1
    assert [e.kind for e in store.events("i1")].count("instance_paused") == 0
