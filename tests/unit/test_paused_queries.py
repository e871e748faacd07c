"""The queries over paused instances read an index range, never every paused row.

Issue 11 measured, at 1,000,000 paused instances, the scheduler's `expired` and
`due_resumes` walking every paused row (4 s each, four times a second). These tests
check on a real store file what a user relies on at any size: (1) each query's plan is a
SEARCH of its index, with statistics and without (a new store, or one the CLI reads
before any agent analysed it); (2) the work a query does (SQLite virtual-machine steps,
counted with a progress handler: deterministic, unlike time) does not grow with the
number of paused instances; (3) the pages, batches and bounded reads give the same
answers as reading everything.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from paused_rows import fill

from procctl.store import Store
from procctl.store.clock import utc_now

NOW = datetime.now(UTC)


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "procctl.db")
    yield opened
    opened.close()


# -- the plans ---------------------------------------------------------------------------

#: each query, called as the agent and the CLI call it, and the index its plan must use
QUERIES: dict[str, tuple[Callable[[Store], Any], str]] = {
    "due_resumes": (lambda s: s.due_resumes(utc_now()), "checkpoints_by_resume"),
    "expired_page": (lambda s: s.expired_page(utc_now()), "checkpoints_expiring"),
    "list_paused": (lambda s: s.list_paused(limit=200), "instances_paused_by_time"),
    "list_paused after": (lambda s: s.list_paused(
        limit=200, before=(_iso(NOW - timedelta(days=3)), "i")), "instances_paused_by_time"),
    "list_paused of a process": (lambda s: s.list_paused(process_name="p", limit=200),
                                 "instances_paused_by_process"),
    "paused_at_calls": (lambda s: s.paused_at_calls("call:"), "instances_by_correlation"),
    "paused_correlation_ids_near": (lambda s: s.paused_correlation_ids_near("order-00042x"),
                                    "sqlite_autoindex_checkpoints"),
    "count_paused_upto": (lambda s: s.count_paused_upto(100), "instances_by_status"),
}

#: a plan step that reads a whole table (a SCAN without an index)
WHOLE_TABLE = re.compile(r"^SCAN (i|c|instances|checkpoints)$")


def plans(store: Store, query: Callable[[Store], Any]) -> list[list[str]]:
    """The plan of every statement `query` runs (traced with its values)."""
    statements: list[str] = []
    db: sqlite3.Connection = store._db  # the store's own connection: its statistics
    db.set_trace_callback(statements.append)
    try:
        query(store)
    finally:
        db.set_trace_callback(None)
    return [[str(row[3]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
            for sql in statements if sql.lstrip().upper().startswith("SELECT")]


@pytest.mark.parametrize("analysed", [False, True], ids=["no statistics", "analysed"])
@pytest.mark.parametrize("name", list(QUERIES))
def test_each_query_searches_its_index(store: Store, name: str, analysed: bool) -> None:
    fill(store, 5000)
    if analysed:
        assert store.optimize() == "analyze"
    assert store.has_statistics() == analysed
    query, index = QUERIES[name]
    found = plans(store, query)
    assert found, f"{name} ran no SELECT"
    steps = [step for plan in found for step in plan]
    assert any(index in step for step in steps), (name, found)
    assert not any(WHOLE_TABLE.match(step) for step in steps), (name, found)
    assert not any("TEMP B-TREE" in step for step in steps), (name, found)


# -- the work does not grow with the paused instances ------------------------------------


def vm_steps(store: Store, query: Callable[[Store], Any]) -> int:
    """SQLite virtual-machine steps (in hundreds) that `query` takes."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    db: sqlite3.Connection = store._db
    db.set_progress_handler(tick, 100)
    try:
        query(store)
    finally:
        db.set_progress_handler(None, 100)
    return count


#: queries whose answer is the same at both sizes (the listings read one page of 200,
#: the scheduler's find nothing due, the rest a bounded set)
STEADY = ("due_resumes", "list_paused", "list_paused after", "list_paused of a process",
          "paused_at_calls", "paused_correlation_ids_near", "count_paused_upto")


@pytest.mark.parametrize("analysed", [False, True], ids=["no statistics", "analysed"])
def test_the_work_of_a_query_does_not_grow_with_the_paused_instances(
        store: Store, analysed: bool) -> None:
    fill(store, 2000)
    if analysed:
        store.optimize()
    small = {name: vm_steps(store, QUERIES[name][0]) for name in STEADY}
    fill(store, 18_000, start=2000)
    if analysed:
        store.optimize()
    large = {name: vm_steps(store, QUERIES[name][0]) for name in STEADY}
    for name in STEADY:  # ten times the rows; a scan would take ten times the steps
        assert large[name] <= 1.5 * small[name] + 10, (name, small[name], large[name])


def test_an_idle_scheduler_reads_nothing_when_nothing_is_due(store: Store) -> None:
    fill(store, 20_000, expired_every=10**9)  # nothing expired (n = 0 aside), none due
    store.expire_instances([(i, "{}", ()) for i, _ in store.expired(utc_now())], utc_now())
    assert store.due_resumes(utc_now()) == [] and store.expired_page(utc_now()) == []
    assert vm_steps(store, lambda s: s.due_resumes(utc_now())) <= 2
    assert vm_steps(store, lambda s: s.expired_page(utc_now())) <= 2


# -- the answers --------------------------------------------------------------------------


def test_expiry_pages_cover_every_expired_paused_or_failed_instance_once(store: Store) -> None:
    fill(store, 3000)
    everything = store.expired_page(utc_now(), limit=-1)
    assert [row.instance_id for row in everything] == [i for i, _ in store.expired(utc_now())]
    assert {row.status for row in everything} <= {"paused", "failed"}
    assert len(everything) > 250
    paged, after = [], None
    while page := store.expired_page(utc_now(), after=after, limit=64):
        paged.extend(page)
        after = page[-1].key
    assert paged == everything
    assert [row.key for row in paged] == sorted(row.key for row in paged)


def test_a_batch_of_expiries_is_one_conditional_transaction(store: Store) -> None:
    fill(store, 200)
    rows = store.expired_page(utc_now(), limit=-1)
    resumed = next(row.instance_id for row in rows if row.status == "paused")
    store.take_resume(resumed)  # resumed meanwhile: no longer qualifies
    commits = store.commits
    now = utc_now()
    done = store.expire_instances(
        [(row.instance_id, json.dumps({"kind": "expired"}),
          [(row.instance_id, now, "instance_expired", "{}", None, None)]) for row in rows],
        now)
    assert store.commits == commits + 1
    assert resumed not in done and set(done) == {r.instance_id for r in rows} - {resumed}
    for instance_id in done:
        assert store.get_instance(instance_id).status == "failed"
        assert store.find_checkpoint(instance_id) is None
        assert [e.kind for e in store.events(instance_id)] == ["instance_expired"]
    assert store.get_instance(resumed).status == "running"
    assert store.expired_page(utc_now(), limit=-1) == []


def test_list_paused_pages_by_key_give_every_paused_instance_newest_first(
        store: Store) -> None:
    fill(store, 500)
    fill(store, 100, start=500, process="other")
    whole = store.list_paused(limit=-1)
    assert len(whole) == store.count_paused()
    keys = [(row.instance.paused_at or "", row.instance.id) for row in whole]
    assert keys == sorted(keys, reverse=True)
    for process in (None, "other"):
        expected = [row.instance.id for row in whole
                    if process is None or row.instance.process_name == process]
        paged: list[str] = []
        before = None
        while page := store.list_paused(process_name=process, limit=37, before=before):
            paged.extend(row.instance.id for row in page)
            before = (page[-1].instance.paused_at or "", page[-1].instance.id)
        assert paged == expected


def test_count_paused_upto_stops_at_its_cap(store: Store) -> None:
    fill(store, 300)
    assert store.count_paused_upto(10_000) == store.count_paused()
    assert store.count_paused_upto(50) == 50
    assert store.count_paused_upto(10_000, process_name="nobody") == 0


def test_near_correlation_ids_are_bounded_and_hold_the_likely_ones(store: Store) -> None:
    fill(store, 5000)
    near = store.paused_correlation_ids_near("order-0004211x")  # a typo at the end
    assert "order-0004211" in near
    assert len(near) <= 60 + 15
    assert "order-0004213" in store.paused_correlation_ids_near("order-000421")  # too short
    paused = set(store.paused_correlation_ids())
    assert set(near) <= paused


def test_optimize_analyses_a_store_once_then_keeps_it_current(store: Store) -> None:
    fill(store, 100)
    assert not store.has_statistics()
    assert store.optimize() == "analyze"
    assert store.has_statistics()
    assert store.optimize() == "optimize"
