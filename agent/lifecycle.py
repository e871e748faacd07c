"""Transitions of the instance life cycle that the agent and the CLI share.

Each reads what its decision (agent/decisions.py) needs, decides, and asks the store to
apply it conditionally in one transaction; the agent then runs the instance on.
"""

from __future__ import annotations

import json
from typing import Any

from procctl.agent import values
from procctl.agent.decisions import WakeParent, decide_wake, delivery_write
from procctl.store import StoreContract
from procctl.store.records import Delivery, InstanceRecord


def applied_event_json(source: str, signal_id: str | None, payload: Any,
                       set_names: list[str] | None = None) -> str:
    """The data of a signal_applied event (written with the signal it records)."""
    applied: dict[str, Any] = {"source": source, "signal_id": signal_id,
                               "payload": values.to_plain(payload)}
    if set_names:
        applied["set"] = sorted(set_names)
    return json.dumps(applied)


def parent_to_wake(store: StoreContract, child: InstanceRecord) -> WakeParent | None:
    """The signal that wakes the parent waiting at this child's call, if any."""
    if child.parent_id is None:
        return None
    parent = store.get_instance(child.parent_id)
    return decide_wake(child.id, child.status, parent.status)


def wake_parent_in_store(store: StoreContract, child: InstanceRecord) -> Delivery | None:
    """Wake the parent of an ended child with no agent to run it: the signal is
    applied (the parent is running from its checkpoint, which the next agent recovers
    and runs on) or held until the parent pauses."""
    wake = parent_to_wake(store, child)
    if wake is None:
        return None
    return store.deliver_signal(
        correlation_id=wake.correlation_id, source=wake.source, decide=delivery_write,
        signal_id=wake.signal_id,
        payload_json=values.dumps(None),
        applied_event=applied_event_json(wake.source, wake.signal_id, None))
