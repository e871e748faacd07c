"""Time to live: what happens to paused or failed instances whose checkpoint outlived it.

Used by the agent's scheduler and by `procctl purge-expired` (also with no agent), both
through the same transitions here. Policy `fail` (the default): the instance fails with
reason `expired` and its snapshot is discarded; a parent paused at its call is woken (its
call fails). Policy `resume` (paused instances only): it resumes with the given payload,
`resumed_by` = `expiry`, so the process can take its timeout path (decisions.decide_expiry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from procctl.agent import values
from procctl.agent.decisions import EXPIRED_ERROR, ResumeWith, decide_expiry
from procctl.agent.lifecycle import wake_parent_in_store
from procctl.store import StoreContract
from procctl.store.clock import utc_now


@dataclass(frozen=True)
class Expiry:
    instance_id: str
    action: str  # "failed" | "resume"
    payload: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "action": self.action,
                "payload": values.to_plain(self.payload)}


def find_expired(store: StoreContract) -> list[Expiry]:
    """What is past its TTL now, and what its policy does."""
    found: list[Expiry] = []
    for instance_id, policy_json in store.expired(utc_now()):
        decision = decide_expiry(store.get_instance(instance_id).status, policy_json)
        if isinstance(decision, ResumeWith):
            found.append(Expiry(instance_id, "resume", values.decode(decision.payload)))
        else:
            found.append(Expiry(instance_id, "failed"))
    return found


def fail_expired(store: StoreContract, expiry: Expiry) -> bool:
    """The instance fails (reason expired), with its instance_expired event; False when
    it no longer qualifies."""
    now, error_json = utc_now(), json.dumps(EXPIRED_ERROR)
    expired = (expiry.instance_id, now, "instance_expired", error_json, None, None)
    return store.expire_instance(expiry.instance_id, error_json, now, events=[expired])


def expire_without_agent(store: StoreContract, expiry: Expiry) -> bool:
    """`fail_expired`, then the parent waiting at its call is woken in the store (the
    next agent runs it on, and its call fails), as the agent's clock does it."""
    if not fail_expired(store, expiry):
        return False
    wake_parent_in_store(store, store.get_instance(expiry.instance_id))
    return True
