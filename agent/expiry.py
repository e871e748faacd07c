"""Time to live: what happens to paused or failed instances whose checkpoint outlived it.

Used by the agent's scheduler and by `procctl purge-expired` (also with no agent), both
through the same transitions here. Policy `fail` (the default): the instance fails with
reason `expired` and its snapshot is discarded; a parent paused at its call is woken (its
call fails). Policy `resume` (paused instances only): it resumes with the given payload,
`resumed_by` = `expiry`, so the process can take its timeout path (decisions.decide_expiry).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from procctl.agent import values
from procctl.agent.decisions import EXPIRED_ERROR, ResumeWith, decide_expiry
from procctl.agent.lifecycle import wake_parent_in_store
from procctl.store import StoreContract
from procctl.store.clock import utc_now
from procctl.store.paused import ExpiredRow

#: instances expired per transaction by a purge without an agent, and the most the
#: agent takes in one (it sizes its batches by time: scheduler.BatchSize); each batch
#: is one short transaction, so other work goes on between them
PURGE_BATCH = 500


@dataclass(frozen=True)
class Expiry:
    instance_id: str
    action: str  # "failed" | "resume"
    payload: Any = None
    #: the instance's parent (a called child), whose call an expiry wakes
    parent_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"instance_id": self.instance_id, "action": self.action,
                "payload": values.to_plain(self.payload)}


def decide(row: ExpiredRow) -> Expiry:
    """What the TTL policy of one expired checkpoint does."""
    decision = decide_expiry(row.status, row.on_expire_json)
    if isinstance(decision, ResumeWith):
        return Expiry(row.instance_id, "resume", values.decode(decision.payload),
                      row.parent_id)
    return Expiry(row.instance_id, "failed", None, row.parent_id)


def find_expired(store: StoreContract, *, limit: int = -1,
                 now: str | None = None) -> list[Expiry]:
    """What is past its TTL at `now` (default: now; at most `limit`; negative: all), and
    what its policy does."""
    return [decide(row) for row in store.expired_page(now or utc_now(), limit=limit)]


def expired_batches(store: StoreContract, now: str | None = None,
                    batch: int = PURGE_BATCH) -> Iterator[list[Expiry]]:
    """What was past its TTL at `now` (default: when called), a batch at a time, each
    read from the index where the last ended: a purge that expires each batch before
    it asks for the next ends, whatever expires meanwhile (that waits for the clock)."""
    now = now or utc_now()
    after: tuple[str, str] | None = None
    while True:
        rows = store.expired_page(now, after=after, limit=batch)
        if not rows:
            return
        after = rows[-1].key
        yield [decide(row) for row in rows]
        if len(rows) < batch:
            return


def fail_expired_batch(store: StoreContract, expiries: Sequence[Expiry],
                       now: str | None = None) -> list[Expiry]:
    """The instances fail (reason expired), each with its instance_expired event, in one
    transaction, as at `now` (default: now); those that were expired (an instance
    resumed meanwhile is left alone)."""
    now, error_json = now or utc_now(), json.dumps(EXPIRED_ERROR)
    done = set(store.expire_instances(
        [(e.instance_id, error_json, [(e.instance_id, now, "instance_expired", error_json,
                                        None, None)]) for e in expiries], now))
    return [e for e in expiries if e.instance_id in done]


def purge_without_agent(store: StoreContract, expiries: Sequence[Expiry]) -> list[Expiry]:
    """What the agent's clock does, without an agent: the failures in one transaction,
    then each expired child's parent woken in the store (the next agent runs it on, and
    its call fails). Resume policies are left (only an agent runs them)."""
    done = fail_expired_batch(store, [e for e in expiries if e.action == "failed"])
    for expiry in done:
        if expiry.parent_id is not None:
            wake_parent_in_store(store, store.get_instance(expiry.instance_id))
    return done
