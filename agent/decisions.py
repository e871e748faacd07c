"""The instance life cycle's decisions, as plain functions over records.

No database and no I/O: each function gets what was read and says what to do; the store
applies it conditionally (agent/lifecycle.py asks it to). Tested in
tests/unit/test_decisions.py.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from procctl.agent import values
from procctl.agent.calls import call_correlation_id
from procctl.store.records import SignalStatus, Status
from procctl.store.signals import (
    DeliveryTarget,
    FirstReceipt,
    Holder,
    LastHolder,
    SignalWrite,
)

__all__ = ["DeliveryTarget", "FirstReceipt", "Holder", "LastHolder", "SignalWrite"]

#: statuses an instance does not leave
TERMINAL = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)


# -- expiry -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Fail:
    """Expire: the instance fails with reason `expired`, its snapshot is discarded."""


@dataclass(frozen=True)
class ResumeWith:
    """Expire by resuming: the process runs on with `payload` (its timeout path)."""

    payload: Any


ExpiryDecision = Fail | ResumeWith

#: the error an expired instance fails with
EXPIRED_ERROR = {"kind": "expired",
                 "message": "the checkpoint outlived its time to live; the snapshot was "
                            "discarded"}


def decide_expiry(status: str, on_expire_json: str | None) -> ExpiryDecision:
    """What a checkpoint past its TTL does: its `on_expire` policy; `resume` only
    applies to a paused instance (a failed one has nothing to run on)."""
    policy = json.loads(on_expire_json) if on_expire_json else {"action": "fail"}
    if policy.get("action") == "resume" and status == Status.PAUSED:
        return ResumeWith(policy.get("payload"))
    return Fail()


def is_expired_error(error_json: str | None) -> bool:
    """Did the instance fail because its checkpoint expired?"""
    if not error_json:
        return False
    try:
        error = json.loads(error_json)
    except ValueError:
        return False
    return isinstance(error, dict) and error.get("kind") == "expired"


# -- waking a parent --------------------------------------------------------------------


@dataclass(frozen=True)
class WakeParent:
    """The signal that resumes a parent paused at the call of a child that ended."""

    correlation_id: str
    signal_id: str
    source: str


def decide_wake(child_id: str, child_status: str, parent_status: str | None
                ) -> WakeParent | None:
    """A child that ended wakes its parent, unless there is none or it has ended too."""
    if child_status not in TERMINAL or parent_status is None or parent_status in TERMINAL:
        return None
    return WakeParent(call_correlation_id(child_id), f"child-ended:{child_id}",
                      f"child:{child_id}")


# -- retry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryFromCheckpoint:
    """Retry by a signal to its checkpoint (through its recover block)."""

    correlation_id: str


@dataclass(frozen=True)
class RetryFromStart:
    """Retry from the first step with the same params."""


RetryDecision = RetryFromCheckpoint | RetryFromStart | None


def decide_retry(status: str, checkpoint_correlation_id: str | None) -> RetryDecision:
    """How a failed or held instance is retried; None: it cannot be (not failed or
    paused)."""
    if checkpoint_correlation_id is not None and status in (Status.FAILED, Status.PAUSED):
        return RetryFromCheckpoint(checkpoint_correlation_id)
    if status == Status.FAILED or (status == Status.PAUSED and
                                   checkpoint_correlation_id is None):
        return RetryFromStart()
    return None


# -- delivery of a signal ---------------------------------------------------------------


@dataclass(frozen=True)
class Apply:
    """Resume the instance with the signal (from `from_status`: paused, or failed for a
    retry)."""

    instance_id: str
    from_status: str
    reason: str | None = None


@dataclass(frozen=True)
class Hold:
    """Keep the signal pending; `for_instance`: held for an instance that will pause
    at this checkpoint whatever happens (a pausing checkpoint), however long it takes."""

    reason: str
    for_instance: str | None = None


@dataclass(frozen=True)
class Repeat:
    """A sender's signal_id seen before: recorded as a duplicate."""

    reason: str
    instance_id: str | None


@dataclass(frozen=True)
class Refuse:
    reason: str
    instance_id: str | None


DeliveryDecision = Apply | Hold | Repeat | Refuse


def decide_delivery(target: DeliveryTarget, now: str, *, allow_retry: bool = True
                    ) -> DeliveryDecision:
    """Applied, held, a repeat or refused (see `Store.deliver_signal`)."""
    if target.signal_id is not None and target.first is not None:
        first = target.first
        return Repeat(f"duplicate: signal_id {target.signal_id!r} was already received at "
                      f"{first.received_at} ({first.status})", first.instance_id)
    holder = target.holder
    if holder is None:
        refused = gone_reason(target.correlation_id, target.last)
        if refused is not None:
            return Refuse(refused, target.last.instance_id if target.last else None)
        return Hold("no paused instance holds this correlation ID yet; held pending")
    if holder.expires_at is not None and holder.expires_at < now and \
            holder.status in (Status.PAUSED, Status.FAILED):
        return Refuse(f"expired: the checkpoint of instance {holder.instance_id} outlived "
                      "its TTL", holder.instance_id)
    if holder.status == Status.PAUSED or (holder.status == Status.RUNNING and (
            holder.iteration == 0 or holder.pausing)):
        unfit = payload_refusal(holder, target.payload_json)
        if unfit is not None:
            return Refuse(unfit, holder.instance_id)
    if holder.status == Status.PAUSED or (holder.status == Status.FAILED and allow_retry):
        return Apply(holder.instance_id, holder.status,
                     None if holder.status == Status.PAUSED else "retry after failure")
    if holder.status == Status.RUNNING and (holder.iteration == 0 or holder.pausing):
        # Saved but not paused yet (its commit block may still be sending the request
        # this signal answers): held, and applied when it pauses. A checkpoint that
        # pauses will pause (after a crash, once recovered): held for that instance.
        return Hold(f"instance {holder.instance_id} has not paused at this checkpoint yet; "
                    "held pending", holder.instance_id if holder.pausing else None)
    return Refuse(f"instance {holder.instance_id} is {holder.status}, not paused",
                  holder.instance_id)


def payload_refusal(holder: Holder, payload_json: str | None) -> str | None:
    """Why a payload does not fit what the holder's checkpoint `expects` (None: it fits,
    or the checkpoint declares nothing). A retry of a failed instance is not checked:
    it resumes with no payload, through the recover block."""
    if holder.expects_json is None:
        return None
    # Here, not at the top: the CLI reads decisions without the definition model.
    from procctl.agent.definition.payload_fields import expects_from_json, payload_problem

    expects = expects_from_json(holder.expects_json) or ()
    problem = payload_problem(expects, values.loads(payload_json))
    if problem is None:
        return None
    return f"payload refused by the checkpoint of instance {holder.instance_id}: {problem}"


def gone_reason(correlation_id: str, last: LastHolder | None) -> str | None:
    """Why a signal cannot reach the last holder of a correlation ID that no longer
    holds its checkpoint (None: it may still pause there)."""
    if last is None:
        return None
    if is_expired_error(last.error_json):
        return f"expired: instance {last.instance_id} expired before this signal came"
    if last.status == Status.CANCELLED:
        error = json.loads(last.error_json) if last.error_json else {}
        message = error.get("message") if isinstance(error, dict) else None
        return (f"instance {last.instance_id} was {message or 'cancelled'}; its checkpoint "
                f"{correlation_id!r} is gone")
    if last.status == Status.COMPLETED:
        return (f"instance {last.instance_id} is {last.status}; its checkpoint "
                f"{correlation_id!r} is gone")
    return None


@dataclass(frozen=True)
class ResumeTarget:
    """Who a signal to a correlation ID would reach now (`procctl resume` checks it)."""

    #: a paused instance holds it, or a failed one that kept its checkpoint (a retry)
    resumable: bool
    #: the instance that holds or last held it; None when no instance ever did
    instance_id: str | None
    #: why it would not be resumed (None when resumable or unknown)
    reason: str | None


def decide_resume_target(target: DeliveryTarget, now: str, *,
                         payload_json: str | None = None) -> ResumeTarget:
    """What `target` (`Store.resume_target`) means for a signal sent now; the delivery
    decides again (`decide_delivery`) when the signal arrives. With `payload_json`
    (the signal's payload, typed JSON), a paused holder whose checkpoint `expects`
    another payload is not resumable either (without it, the payload is not checked)."""
    holder = target.holder
    if holder is None:
        last = target.last
        if last is None:
            return ResumeTarget(False, None, None)
        reason = gone_reason(target.correlation_id, last) or (
            f"instance {last.instance_id} is {last.status} and holds no checkpoint here")
        return ResumeTarget(False, last.instance_id, reason)
    instance_id, status = holder.instance_id, holder.status
    if status in (Status.PAUSED, Status.FAILED):
        if holder.expires_at is not None and holder.expires_at < now:
            return ResumeTarget(False, instance_id, f"expired: the checkpoint of instance "
                                f"{instance_id} outlived its TTL")
        if payload_json is not None and status == Status.PAUSED:
            unfit = payload_refusal(holder, payload_json)
            if unfit is not None:
                return ResumeTarget(False, instance_id, unfit)
        return ResumeTarget(True, instance_id, None)
    if status == Status.RUNNING and holder.iteration == 0:
        return ResumeTarget(False, instance_id, f"instance {instance_id} has not paused at "
                            "this checkpoint yet")
    return ResumeTarget(False, instance_id, f"instance {instance_id} is {status}, not paused")


def delivery_write(target: DeliveryTarget, now: str, *, allow_retry: bool = True
                   ) -> SignalWrite:
    """`decide_delivery` as the store writes it (`Store.deliver_signal`'s `decide`)."""
    decision = decide_delivery(target, now, allow_retry=allow_retry)
    if isinstance(decision, Apply):
        return SignalWrite(SignalStatus.APPLIED, decision.reason, decision.instance_id,
                           decision.from_status)
    if isinstance(decision, Hold):
        return SignalWrite(SignalStatus.PENDING, decision.reason, decision.for_instance)
    if isinstance(decision, Repeat):
        return SignalWrite(SignalStatus.DUPLICATE, decision.reason, decision.instance_id)
    return SignalWrite(SignalStatus.REJECTED, decision.reason, decision.instance_id)
