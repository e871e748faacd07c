"""The store contract's pages and batches, which procctl relies on at a million paused
instances (docs/scale.md): list-paused pages by key, the expiry pages, the batch expiry,
the capped count and the did-you-mean neighbours. Through StoreContract's methods only,
for every backend: what each returns, not how fast."""

from __future__ import annotations

import json

from contract.backends import paused, running

from procctl.store import StoreContract
from procctl.store.clock import utc_after, utc_now
from procctl.store.records import Status

EXPIRED = json.dumps({"kind": "expired", "message": "outlived its TTL"})


def test_list_paused_pages_by_key_cover_every_instance_once_newest_first(
        store: StoreContract) -> None:
    for n in range(7):
        paused(store, f"i{n}", f"c{n}")
    running(store, "busy")
    whole = [row.instance.id for row in store.list_paused(limit=100)]
    assert sorted(whole) == [f"i{n}" for n in range(7)]
    keys = [(row.instance.paused_at, row.instance.id) for row in store.list_paused(limit=100)]
    assert keys == sorted(keys, reverse=True)  # newest first, ID breaking ties
    pages, before = [], None
    while True:
        page = store.list_paused(limit=3, before=before)
        if not page:
            break
        pages.append([row.instance.id for row in page])
        last = page[-1].instance
        assert last.paused_at is not None
        before = (last.paused_at, last.id)
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [i for p in pages for i in p] == whole


def test_the_paused_count_stops_at_its_cap(store: StoreContract) -> None:
    for n in range(5):
        paused(store, f"i{n}", f"c{n}")
    assert store.count_paused_upto(100) == 5
    assert store.count_paused_upto(3) == 3
    assert store.count_paused_upto(100, process_name="another") == 0
    assert store.count_paused_upto(100, process_name="contract") == 5


def test_expiry_pages_give_each_expired_checkpoint_once_in_time_order(
        store: StoreContract) -> None:
    past = [utc_after(-60 + n) for n in range(5)]
    for n, moment in enumerate(past):
        paused(store, f"i{n}", f"c{n}", expires_at=moment)
    paused(store, "later", "c-later", expires_at=utc_after(3600))
    paused(store, "never", "c-never")
    now = utc_now()
    seen, after = [], None
    while page := store.expired_page(now, after=after, limit=2):
        seen.extend(page)
        after = page[-1].key
    assert [row.instance_id for row in seen] == [f"i{n}" for n in range(5)]
    assert [row.expires_at for row in seen] == past
    assert {row.status for row in seen} == {Status.PAUSED}
    assert [row.instance_id for row in store.expired_page(now, limit=-1)] == \
        [row.instance_id for row in seen]


def test_a_batch_expiry_expires_only_what_still_qualifies(store: StoreContract) -> None:
    gone = utc_after(-30)
    paused(store, "i1", "c1", expires_at=gone)
    paused(store, "i2", "c2", expires_at=gone)
    paused(store, "fresh", "c3", expires_at=utc_after(3600))
    now = utc_now()
    done = store.expire_instances(
        [("i1", EXPIRED, ()), ("fresh", EXPIRED, ()), ("i2", EXPIRED, ())], now)
    assert done == ["i1", "i2"]
    for instance_id in ("i1", "i2"):
        record = store.get_instance(instance_id)
        assert record.status is Status.FAILED
        assert record.error_json is not None and json.loads(record.error_json) == \
            json.loads(EXPIRED)
        assert store.find_checkpoint(instance_id) is None
    assert store.get_instance("fresh").status is Status.PAUSED
    assert store.expire_instances([("i1", EXPIRED, ())], now) == []  # already done


def test_did_you_mean_offers_paused_neighbours_of_a_mistyped_id(
        store: StoreContract) -> None:
    for name in ("approval-A1", "approval-A2", "invoice-7"):
        paused(store, name.lower(), name)
    near = store.paused_correlation_ids_near("approvl-A2")
    assert {"approval-A1", "approval-A2"} <= set(near)
    assert store.paused_correlation_ids_near("zzz", limit=4)  # something, never all
    running(store, "busy")
    store.save_checkpoint("busy", "gate", "approval-A3", "{}", expires_at=None)
    assert "approval-A3" not in store.paused_correlation_ids_near("approval-A")


def test_the_planner_s_statistics_are_refreshed(store: StoreContract) -> None:
    """Each backend refreshes its own statistics (the agent does it hourly)."""
    paused(store, "i1", "c1")
    assert store.optimize() in ("analyze", "optimize")
    assert store.has_statistics()
