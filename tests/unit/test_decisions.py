"""The life cycle's decisions (agent/decisions.py): plain functions, no database."""

from __future__ import annotations

import json

import pytest

from procctl.agent.decisions import (
    Apply,
    DeliveryTarget,
    Fail,
    FirstReceipt,
    Hold,
    Holder,
    LastHolder,
    Refuse,
    Repeat,
    ResumeWith,
    RetryFromCheckpoint,
    RetryFromStart,
    WakeParent,
    decide_delivery,
    decide_expiry,
    decide_retry,
    decide_wake,
    is_expired_error,
)

NOW = "2026-12-02T04:00:00.000000Z"
PAST = "2026-12-02T03:00:00.000000Z"
LATER = "2026-12-02T05:00:00.000000Z"


def _target(holder: Holder | None = None, *, last: LastHolder | None = None,
            first: FirstReceipt | None = None, signal_id: str | None = None) -> DeliveryTarget:
    return DeliveryTarget("order-1", signal_id, first, holder, last)


def _holder(status: str, *, iteration: int = 1, pausing: bool = False,
            expires_at: str | None = None) -> Holder:
    return Holder("i1", status, iteration, pausing, expires_at)


# -- expiry -----------------------------------------------------------------------------


def test_expiry_fails_by_default_and_with_the_fail_policy() -> None:
    assert decide_expiry("paused", None) == Fail()
    assert decide_expiry("paused", json.dumps({"action": "fail"})) == Fail()


def test_expiry_resumes_a_paused_instance_with_its_payload() -> None:
    policy = json.dumps({"action": "resume", "payload": {"by": "timeout"}})
    assert decide_expiry("paused", policy) == ResumeWith({"by": "timeout"})


def test_a_failed_instance_fails_for_good_whatever_its_policy() -> None:
    policy = json.dumps({"action": "resume", "payload": 1})
    assert decide_expiry("failed", policy) == Fail()


@pytest.mark.parametrize(("error_json", "expired"), [
    (None, False), ("", False), ("not json", False), ("[1]", False),
    (json.dumps({"kind": "step"}), False), (json.dumps({"kind": "expired"}), True)])
def test_an_expired_error_is_read_from_its_kind(error_json: str | None, expired: bool) -> None:
    assert is_expired_error(error_json) is expired


# -- waking a parent --------------------------------------------------------------------


def test_an_ended_child_wakes_its_live_parent_at_its_call() -> None:
    assert decide_wake("c1", "failed", "paused") == WakeParent(
        "call:c1", "child-ended:c1", "child:c1")
    assert decide_wake("c1", "completed", "running") is not None


@pytest.mark.parametrize(("child", "parent"), [
    ("paused", "paused"), ("running", "paused"), ("failed", None), ("failed", "failed"),
    ("completed", "failed")])
def test_no_wake_without_an_ended_child_and_a_live_parent(child: str,
                                                          parent: str | None) -> None:
    assert decide_wake("c1", child, parent) is None


# -- delivery ---------------------------------------------------------------------------


def test_a_paused_holder_takes_the_signal() -> None:
    assert decide_delivery(_target(_holder("paused")), NOW) == Apply("i1", "paused")


def test_a_failed_holder_is_retried_unless_retries_are_refused() -> None:
    assert decide_delivery(_target(_holder("failed")), NOW) == Apply(
        "i1", "failed", "retry after failure")
    assert isinstance(decide_delivery(_target(_holder("failed")), NOW, allow_retry=False),
                      Refuse)


def test_a_signal_id_seen_before_is_a_repeat_whatever_the_holder() -> None:
    first = FirstReceipt(PAST, "applied", "i0")
    decision = decide_delivery(_target(_holder("paused"), first=first, signal_id="s1"), NOW)
    assert isinstance(decision, Repeat) and decision.instance_id == "i0"
    assert "'s1'" in decision.reason and PAST in decision.reason


def test_an_expired_checkpoint_refuses_the_signal() -> None:
    for status in ("paused", "failed"):
        decision = decide_delivery(_target(_holder(status, expires_at=PAST)), NOW)
        assert isinstance(decision, Refuse) and decision.reason.startswith("expired:")
    assert decide_delivery(_target(_holder("paused", expires_at=LATER)), NOW) == Apply(
        "i1", "paused")


def test_a_checkpoint_saved_but_not_paused_at_yet_holds_the_signal() -> None:
    fresh = decide_delivery(_target(_holder("running", iteration=0)), NOW)
    assert isinstance(fresh, Hold) and fresh.for_instance is None
    # a pausing checkpoint (a gate) pauses whatever happens: held for its instance
    gate = decide_delivery(_target(_holder("running", iteration=3, pausing=True)), NOW)
    assert isinstance(gate, Hold) and gate.for_instance == "i1"


def test_an_instance_running_on_after_a_resume_refuses_the_signal() -> None:
    decision = decide_delivery(_target(_holder("running", iteration=1)), NOW)
    assert decision == Refuse("instance i1 is running, not paused", "i1")


def test_no_holder_yet_holds_the_signal() -> None:
    assert isinstance(decide_delivery(_target(), NOW), Hold)
    still = LastHolder("i1", "running", None)
    assert isinstance(decide_delivery(_target(last=still), NOW), Hold)


def test_a_holder_gone_for_good_refuses_the_signal() -> None:
    expired = LastHolder("i1", "failed", json.dumps({"kind": "expired"}))
    decision = decide_delivery(_target(last=expired), NOW)
    assert isinstance(decision, Refuse) and decision.reason.startswith("expired:")
    done = decide_delivery(_target(last=LastHolder("i1", "completed", None)), NOW)
    assert isinstance(done, Refuse) and "is completed" in done.reason
    # failed for another reason: it may be retried and pause there again
    assert isinstance(decide_delivery(_target(last=LastHolder("i1", "failed", None)), NOW),
                      Hold)


# -- retry ------------------------------------------------------------------------------


def test_a_retry_resumes_from_a_kept_checkpoint() -> None:
    for status in ("failed", "paused"):
        assert decide_retry(status, "order-1") == RetryFromCheckpoint("order-1")


def test_a_retry_without_a_checkpoint_starts_again() -> None:
    assert decide_retry("failed", None) == RetryFromStart()
    assert decide_retry("paused", None) == RetryFromStart()  # held by on_crash = "hold"


def test_only_a_failed_or_held_instance_is_retried() -> None:
    assert decide_retry("running", "order-1") is None
    assert decide_retry("completed", None) is None
