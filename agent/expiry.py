"""Time to live: what happens to paused or failed instances whose checkpoint outlived it.

Used by the agent's scheduler and by `procctl purge-expired` (also with no agent).
Policy `fail` (the default): the instance fails with reason `expired` and its snapshot is
discarded. Policy `resume` (paused instances only): it resumes with the given payload,
`resumed_by` = `expiry`, so the process can take its timeout path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from procctl.agent import values
from procctl.store import Store
from procctl.store.clock import utc_now


@dataclass(frozen=True)
class Expiry:
    instance_id: str
    action: str  # "failed" | "resume"
    payload: Any = None

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "action": self.action,
                "payload": values.to_plain(self.payload)}


def find_expired(store: Store) -> list[Expiry]:
    """What is past its TTL now, and what its policy does."""
    found: list[Expiry] = []
    for instance_id, policy_json in store.expired(utc_now()):
        policy = json.loads(policy_json) if policy_json else {"action": "fail"}
        if policy.get("action") == "resume" and \
                store.get_instance(instance_id).status == "paused":
            found.append(Expiry(instance_id, "resume", values.decode(policy.get("payload"))))
        else:
            found.append(Expiry(instance_id, "failed"))
    return found


def fail_expired(store: Store, expiry: Expiry) -> bool:
    error = {"kind": "expired",
             "message": "the checkpoint outlived its time to live; the snapshot was discarded"}
    return store.expire_instance(expiry.instance_id, json.dumps(error), utc_now())
