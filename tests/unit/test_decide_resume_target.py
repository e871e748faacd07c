"""decisions.decide_resume_target: what `procctl resume` tells of what the store read."""

from __future__ import annotations

import json

from procctl.agent.decisions import ResumeTarget, decide_resume_target
from procctl.store.signals import DeliveryTarget, Holder, LastHolder

NOW = "2026-01-01T00:00:00.000000Z"
LATER = "2026-01-02T00:00:00.000000Z"
EARLIER = "2025-12-31T00:00:00.000000Z"


def held(status: str, *, iteration: int = 1, expires_at: str | None = None
         ) -> DeliveryTarget:
    return DeliveryTarget("c1", None, None, Holder("i1", status, iteration, False, expires_at),
                          None)


def gone(status: str, error: dict[str, str] | None = None) -> DeliveryTarget:
    last = LastHolder("i1", status, None if error is None else json.dumps(error))
    return DeliveryTarget("c1", None, None, None, last)


def test_a_paused_or_failed_holder_takes_it() -> None:
    assert decide_resume_target(held("paused"), NOW) == ResumeTarget(True, "i1", None)
    assert decide_resume_target(held("failed", expires_at=LATER), NOW).resumable


def test_an_expired_checkpoint_is_refused() -> None:
    target = decide_resume_target(held("paused", expires_at=EARLIER), NOW)
    assert not target.resumable and target.reason is not None
    assert target.reason.startswith("expired: the checkpoint of instance i1")


def test_a_running_holder_is_not_paused() -> None:
    first = decide_resume_target(held("running", iteration=0), NOW).reason
    assert first == "instance i1 has not paused at this checkpoint yet"
    later = decide_resume_target(held("running", iteration=2), NOW).reason
    assert later == "instance i1 is running, not paused"


def test_no_instance_ever_held_it() -> None:
    target = DeliveryTarget("c1", None, None, None, None)
    assert decide_resume_target(target, NOW) == ResumeTarget(False, None, None)


def test_the_last_holder_is_gone() -> None:
    expired = decide_resume_target(gone("failed", {"kind": "expired"}), NOW).reason
    assert expired == "expired: instance i1 expired before this signal came"
    done = decide_resume_target(gone("completed"), NOW).reason
    assert done == "instance i1 is completed; its checkpoint 'c1' is gone"
    failed = decide_resume_target(gone("failed", {"kind": "boom"}), NOW).reason
    assert failed == "instance i1 is failed and holds no checkpoint here"
