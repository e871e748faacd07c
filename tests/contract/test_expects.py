"""A checkpoint's declared payload (`expects`) is stored with it and checked in the
delivery's own transaction: a signal that does not fit is refused there, and the
instance stays where it was. Runs for every backend."""

from __future__ import annotations

import json

from contract.backends import deliver, running

from procctl.agent import values
from procctl.store import StoreContract
from procctl.store.records import SignalStatus, Status

EXPECTS = json.dumps([["approved", "bool", False], ["by", "str", False],
                      ["note", "str", True]])


def _checkpointed(store: StoreContract, instance_id: str, correlation_id: str, *,
                  pausing: bool = True) -> None:
    running(store, instance_id)
    [outcome] = store.save_checkpoints([{
        "instance_id": instance_id, "step_id": "gate", "correlation_id": correlation_id,
        "snapshot_json": '{"at": "gate"}', "expires_at": None, "pausing": pausing,
        "expects_json": EXPECTS}])
    assert not isinstance(outcome, Exception), outcome


def _paused(store: StoreContract, instance_id: str, correlation_id: str) -> None:
    _checkpointed(store, instance_id, correlation_id)
    assert store.pause_instance(instance_id, commit_value_json=None, resume_at=None) is None


def test_the_declared_payload_is_stored_with_the_checkpoint(store: StoreContract) -> None:
    _checkpointed(store, "i1", "order-1")
    assert store.get_checkpoint("i1").expects_json == EXPECTS
    assert store.resume_target("order-1").holder is not None
    assert store.resume_target("order-1").holder.expects_json == EXPECTS  # type: ignore[union-attr]


def test_a_payload_without_a_required_field_is_refused_and_the_instance_stays_paused(
        store: StoreContract) -> None:
    _paused(store, "i1", "order-1")
    done = deliver(store, "order-1", payload_json=values.dumps({"approved": True}))
    assert done.outcome == SignalStatus.REJECTED
    assert done.reason is not None and "'by'" in done.reason and "missing" in done.reason
    assert done.instance_id == "i1"
    assert store.get_instance("i1").status == Status.PAUSED
    assert store.get_checkpoint("i1").iteration == 0
    [kept] = store.list_signals(("rejected",))
    assert kept.reason == done.reason


def test_a_field_of_the_wrong_type_is_refused_naming_it(store: StoreContract) -> None:
    _paused(store, "i1", "order-1")
    done = deliver(store, "order-1",
                   payload_json=values.dumps({"approved": "yes", "by": "ada"}))
    assert done.outcome == SignalStatus.REJECTED
    assert done.reason is not None
    assert "'approved' must be bool, not str \"yes\"" in done.reason
    assert store.get_instance("i1").status == Status.PAUSED


def test_a_payload_that_fits_resumes_it(store: StoreContract) -> None:
    _paused(store, "i1", "order-1")
    payload = values.dumps({"approved": False, "by": "ada", "extra": 1})
    done = deliver(store, "order-1", payload_json=payload)
    assert done.outcome == SignalStatus.APPLIED
    assert store.get_instance("i1").status == Status.RUNNING
    assert store.get_checkpoint("i1").resume_payload_json == payload


def test_a_signal_before_the_pause_is_refused_at_once_not_held(store: StoreContract) -> None:
    _checkpointed(store, "i1", "order-1", pausing=True)
    refused = deliver(store, "order-1", payload_json=values.dumps({"by": "ada"}))
    assert refused.outcome == SignalStatus.REJECTED
    held = deliver(store, "order-1",
                   payload_json=values.dumps({"approved": True, "by": "ada"}))
    assert held.outcome == SignalStatus.PENDING
    # The held one (and not the refused one) is taken when the instance pauses.
    taken = store.pause_instance("i1", commit_value_json=None, resume_at=None)
    assert taken is not None and taken.id == held.signal.id


def test_a_retry_of_a_failed_instance_is_not_checked(store: StoreContract) -> None:
    _paused(store, "i1", "order-1")
    deliver(store, "order-1", payload_json=values.dumps({"approved": True, "by": "ada"}))
    store.finish_instance("i1", "failed", error_json=json.dumps({"message": "boom"}))
    retried = deliver(store, "order-1", payload_json=values.dumps(None))
    assert retried.outcome == SignalStatus.APPLIED
    assert store.get_instance("i1").status == Status.RUNNING
