"""Retention at scale and on the agent's clock (store/retention.py, agent/retention.py).

What a user relies on with a large store: a purge and the agent's retention pass read
index ranges, never every instance, and what started after the cut is never read (the
work of a pass with nothing old does not grow with the recent instances); the agent's
clock purges a small batch per tick, starts a pass only every RETENTION_INTERVAL, and
does nothing with `retention = "0"`. On a real SQLite file, plans checked as
tests/unit/test_paused_queries.py checks them.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from procctl.agent.retention import FinishedPass, RetentionClock, cut_before, retention_seconds
from procctl.agent.store_worker import StoreWorker
from procctl.store import Store
from procctl.store.errors import NotFound

DEFINITION = "d" * 64
NOW = datetime.now(UTC)
DAY = 86_400.0


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def fill_finished(path: Path, count: int, *, start: int = 0, days_ago: float = 40,
                  events: int = 3) -> None:
    """`count` finished instances `f0000000`... (completed, failed keeping a checkpoint,
    cancelled in turn) that started and ended about `days_ago` days ago, each with
    `events` history events and an applied signal; written in one transaction."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute("INSERT OR IGNORE INTO definitions (sha256, name, source, created_at)"
                   " VALUES (?, 'p', 'source', ?)", (DEFINITION, _iso(NOW)))
        for n in range(start, start + count):
            began = NOW - timedelta(days=days_ago, seconds=n)
            ended = began + timedelta(seconds=1)
            status = ("completed", "failed", "cancelled")[n % 3]
            instance_id = f"f{n:07d}"
            db.execute(
                "INSERT INTO instances (id, definition_sha256, process_name, status,"
                " params_json, trigger_json, started_at, updated_at, ended_at)"
                " VALUES (?, ?, 'p', ?, '{}', '{}', ?, ?, ?)",
                (instance_id, DEFINITION, status, _iso(began), _iso(ended), _iso(ended)))
            db.executemany(
                "INSERT INTO events (instance_id, at, kind, data_json) VALUES (?, ?, 'e', '{}')",
                [(instance_id, _iso(began))] * events)
            db.execute(
                "INSERT INTO signals (id, correlation_id, source, status, instance_id,"
                " received_at) VALUES (?, ?, 'cli:x', 'applied', ?, ?)",
                (f"s{n:07d}", f"c{n:07d}", instance_id, _iso(began)))
            if status == "failed":
                db.execute(
                    "INSERT INTO checkpoints (instance_id, step_id, correlation_id,"
                    " snapshot_json, size, created_at) VALUES (?, 'gate', ?, '{}', 2, ?)",
                    (instance_id, f"c{n:07d}", _iso(began)))
        db.execute("COMMIT")
    finally:
        db.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(tmp_path / "procctl.db")
    yield opened
    opened.close()


def traced(store: Store, action: Callable[[Store], Any]) -> list[str]:
    """The statements `action` runs on the store's connection, with their values."""
    statements: list[str] = []
    db: sqlite3.Connection = store._db
    db.set_trace_callback(statements.append)
    try:
        action(store)
    finally:
        db.set_trace_callback(None)
    return [s for s in statements if s.lstrip().split()[0].upper() in
            ("SELECT", "UPDATE", "DELETE")]


def plan(store: Store, statement: str) -> list[str]:
    return [str(row[3]) for row in store._db.execute(f"EXPLAIN QUERY PLAN {statement}")]


#: a plan step that reads a whole table (a SCAN without an index)
WHOLE_TABLE = re.compile(r"^SCAN (i|p|ch|instances|checkpoints|events|signals)$")

#: a range of every finished instance of a status, old and recent alike
ONE_STATUS = re.compile(r"instances_by_status \(status=\?\)")

OLD = cut_before(30 * DAY)


def purge_one_page(store: Store) -> None:
    FinishedPass(OLD).purge_next(store, 50)


ACTIONS: dict[str, Callable[[Store], Any]] = {
    "finished_page": lambda s: s.finished_page(OLD, limit=50),
    "finished_page after": lambda s: s.finished_page(
        OLD, after=("failed", _iso(NOW - timedelta(days=45))), limit=50),
    "purge_finished": purge_one_page,
    "count_old_signals": lambda s: s.count_old_signals(OLD),
    "clear_old_signals": lambda s: s.clear_old_signals(OLD, 50),
}


@pytest.mark.parametrize("analysed", [False, True], ids=["no statistics", "analysed"])
@pytest.mark.parametrize("name", [n for n in ACTIONS if n != "purge_finished"])
def test_each_read_searches_an_index(store: Store, name: str, analysed: bool) -> None:
    fill_finished(store.path, 3000)
    fill_finished(store.path, 3000, start=3000, days_ago=1)
    if analysed:
        store.optimize()
    statements = traced(store, ACTIONS[name])
    assert statements, name
    for statement in statements:
        steps = plan(store, statement)
        assert any("USING" in step for step in steps), (statement, steps)
        assert not any(WHOLE_TABLE.match(step) for step in steps), (statement, steps)
        assert not any("TEMP B-TREE" in step for step in steps), (statement, steps)
        assert not any(ONE_STATUS.search(step) for step in steps), (statement, steps)
        if "started_at = " in statement:  # the rows that started with a page's last
            assert "started_at=?)" in steps[0], (statement, steps)


def _has_index(store: Store, name: str) -> bool:
    return store._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = ?",
                             (name,)).fetchone() is not None


def test_a_purge_reads_its_rows_by_index(store: Store) -> None:
    """Every statement of a purge's transaction searches an index, but the removal of
    the instances' signal rows: `signals` has no index on instance_id until the
    migration asked for in the report (signals_by_instance) lands."""
    fill_finished(store.path, 2000)
    for statement in traced(store, purge_one_page):
        steps = plan(store, statement)
        if statement.startswith("DELETE FROM signals") and not _has_index(
                store, "signals_by_instance"):
            assert steps == ["SCAN signals"], steps  # the known gap: a scan per page
            continue
        assert not any(WHOLE_TABLE.match(step) for step in steps), (statement, steps)
        assert not any(ONE_STATUS.search(step) for step in steps), (statement, steps)
        if statement.startswith(("UPDATE", "DELETE")):  # the page's rows by their key
            assert "(id=?)" in steps[0] or "(instance_id=?)" in steps[0], (statement, steps)


def vm_steps(store: Store, action: Callable[[Store], Any]) -> int:
    """SQLite virtual-machine steps (in hundreds) that `action` takes."""
    count = 0

    def tick() -> int:
        nonlocal count
        count += 1
        return 0

    store._db.set_progress_handler(tick, 100)
    try:
        action(store)
    finally:
        store._db.set_progress_handler(None, 100)
    return count


def test_a_pass_with_nothing_old_reads_nothing_of_the_recent_instances(store: Store) -> None:
    fill_finished(store.path, 1000, days_ago=1)
    small = vm_steps(store, lambda s: s.finished_page(OLD))
    fill_finished(store.path, 20_000, start=1000, days_ago=1)
    large = vm_steps(store, lambda s: s.finished_page(OLD))
    assert store.finished_page(OLD) == []
    assert large <= small + 2, (small, large)


def test_a_pass_covers_what_ended_before_the_cut_and_leaves_the_rest(store: Store) -> None:
    fill_finished(store.path, 250)
    fill_finished(store.path, 50, start=250, days_ago=1)
    walk = FinishedPass(OLD)
    pages = 0
    while not walk.done:
        walk.purge_next(store, 40)
        pages += 1
    assert walk.purged == 250 and pages == 7
    assert store.count_by_status() and sum(store.count_by_status().values()) == 50
    left = store._db.execute("SELECT COUNT(*) FROM events").fetchone()[0]
    assert left == 50 * 3
    assert store._db.execute("SELECT COUNT(*) FROM signals").fetchone()[0] == 50
    with pytest.raises(NotFound):
        store.get_instance("f0000000")


# -- the agent's clock ---------------------------------------------------------------


def test_retention_zero_keeps_everything() -> None:
    assert retention_seconds("0") is None and retention_seconds(0) is None
    assert retention_seconds("30d") == 30 * DAY


def run_clock(path: Path, retention: float | None, steps: int, *, batch: int = 10,
              interval: float = 3600.0) -> RetentionClock:
    async def main() -> RetentionClock:
        worker = StoreWorker(path)
        await worker.open()
        try:
            clock = RetentionClock(worker, retention, interval=interval, batch=batch, rest=0)
            for _ in range(steps):
                await clock.step()
            return clock
        finally:
            await worker.close()

    return asyncio.run(main())


def count(path: Path, sql: str) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute(sql).fetchone()[0])
    finally:
        db.close()


def test_the_clock_purges_a_batch_per_tick_and_one_pass_per_interval(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    Store(path).close()
    fill_finished(path, 35)
    fill_finished(path, 5, start=35, days_ago=1)
    run_clock(path, 30 * DAY, steps=2)
    assert count(path, "SELECT COUNT(*) FROM instances") == 40 - 20  # two batches of 10
    run_clock(path, 30 * DAY, steps=10)
    assert count(path, "SELECT COUNT(*) FROM instances") == 5
    assert count(path, "SELECT COUNT(*) FROM events") == 5 * 3


def test_the_clock_waits_an_interval_between_passes(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    Store(path).close()

    async def main() -> None:
        worker = StoreWorker(path)
        await worker.open()
        try:
            clock = RetentionClock(worker, 30 * DAY, batch=10, rest=0)
            for _ in range(3):  # the first pass: nothing to do
                await clock.step()
            fill_finished(path, 5)
            for _ in range(10):  # within the interval: no new pass
                await clock.step()
            assert count(path, "SELECT COUNT(*) FROM instances") == 5
            clock._next = 0.0  # the interval is over
            for _ in range(3):
                await clock.step()
            assert count(path, "SELECT COUNT(*) FROM instances") == 0
        finally:
            await worker.close()

    asyncio.run(main())


def test_the_clock_does_nothing_with_retention_zero(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    Store(path).close()
    fill_finished(path, 5, days_ago=400)
    run_clock(path, retention_seconds("0"), steps=5)
    assert count(path, "SELECT COUNT(*) FROM instances") == 5


def test_the_clock_clears_old_signal_records_after_the_instances(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    Store(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    old, recent = _iso(NOW - timedelta(days=40)), _iso(NOW - timedelta(days=1))
    db.executemany("INSERT INTO signals (id, source, status, reason, received_at)"
                   " VALUES (?, 'file:x.json', ?, 'bad', ?)",
                   [(f"r{n}", ("rejected", "unmatched", "duplicate", "pending")[n % 4],
                     old if n < 20 else recent) for n in range(24)])
    db.close()
    run_clock(path, 30 * DAY, steps=4)
    assert count(path, "SELECT COUNT(*) FROM signals") == 4 + 5  # the recent, the pending
    assert count(path, "SELECT COUNT(*) FROM signals WHERE status = 'pending'") == 6


# -- old signal files -----------------------------------------------------------------


def test_old_signal_files_are_the_filed_ones_and_links_are_removed_not_followed(
        tmp_path: Path) -> None:
    from procctl.agent.retention import old_signal_files

    signals = tmp_path / "signals"
    (signals / "processed").mkdir(parents=True)
    (signals / "rejected" / "a-directory").mkdir(parents=True)
    (signals / "waiting.json").write_text("{}")  # not read yet: never touched
    (signals / "processed" / "done.json").write_text("{}")
    (signals / "rejected" / "bad.json").write_text("x")
    (signals / "rejected" / "bad.json.error.json").write_text("{}")
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me")
    (signals / "rejected" / "link.json").symlink_to(precious)

    assert old_signal_files(signals, 3600).files == []  # all filed just now
    sweep = old_signal_files(signals, 0)
    assert [p.name for p in sweep.files] == ["done.json", "bad.json", "bad.json.error.json",
                                             "link.json"]
    assert sweep.remove() == 4 and sweep.failed == []
    assert precious.read_text() == "keep me"
    assert (signals / "waiting.json").exists() and (signals / "rejected" / "a-directory").is_dir()


def test_a_filed_folder_that_is_a_link_is_left_alone(tmp_path: Path) -> None:
    from procctl.agent.retention import old_signal_files

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "important.json").write_text("{}")
    signals = tmp_path / "signals"
    signals.mkdir()
    (signals / "processed").symlink_to(elsewhere)
    sweep = old_signal_files(signals, 0)
    assert sweep.files == [] and sweep.folders == []
    assert (elsewhere / "important.json").exists()


def test_the_clock_rests_after_a_batch(tmp_path: Path) -> None:
    """After a batch, no other before `rest` times as long as it took has passed: a
    backlog takes at most a share of the store thread."""
    path = tmp_path / "procctl.db"
    Store(path).close()
    fill_finished(path, 30)

    async def main() -> None:
        worker = StoreWorker(path)
        await worker.open()
        try:
            clock = RetentionClock(worker, 30 * DAY, batch=10, rest=10_000)
            for _ in range(5):
                await clock.step()
            assert count(path, "SELECT COUNT(*) FROM instances") == 20  # one batch
            clock._rested = 0.0  # the rest is over
            await clock.step()
            assert count(path, "SELECT COUNT(*) FROM instances") == 10
        finally:
            await worker.close()

    asyncio.run(main())
