"""bench/checkpoints.py's raw limits, signal floor, encode timing and targets, run small.

The bench's limits are only worth comparing with if they do what the README says: real
commits to a WAL + synchronous=FULL SQLite file, one transaction per commit timed, rows
of the asked size; a floor that really reads the renamed file and commits it; an encode
of a snapshot that round-trips. Run with tiny sizes on a temporary directory.
"""

from __future__ import annotations

import importlib
import json
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> Iterator[dict[str, ModuleType]]:
    """The bench's modules, imported as `python bench/checkpoints.py` imports them."""
    sys.path.insert(0, str(BENCH))
    try:
        yield {name: importlib.import_module(name)
               for name in ("raw_limits", "signal_floor", "encode_time", "targets")}
    finally:
        sys.path.remove(str(BENCH))


def test_commit_loop_commits_each_row_durably_in_wal(bench: dict[str, ModuleType],
                                                     tmp_path: Path) -> None:
    raw = bench["raw_limits"]
    store = raw.RawStore(tmp_path / "raw.db")
    try:
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        grown = store.grow_wal()
        page = store.db.execute("PRAGMA page_size").fetchone()[0]
        pages = store.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        assert grown >= page * pages  # the WAL reached its working size
        loop = store.commit_loop(row_bytes=2000, commits=7)
        more = store.commit_loop(row_bytes=2000, commits=3)
        batch = raw.measure(store, raw.RawLoop(row_bytes=500, commits=4, rows_per_commit=9))
    finally:
        store.close()
    assert (loop.commits, loop.rows_per_commit, len(loop.times)) == (7, 1, 7)
    assert 0 < loop.p50 <= loop.p99 <= max(loop.times)
    assert loop.commits_per_second == pytest.approx(7 / loop.seconds)
    assert sum(loop.times) <= loop.seconds
    both = raw.merged([loop, more])  # slices of one loop taken apart, as one
    assert (both.commits, both.times) == (10, loop.times + more.times)
    assert both.seconds == pytest.approx(loop.seconds + more.seconds)
    with pytest.raises(ValueError):
        raw.merged([loop, batch])
    assert (batch.commits, len(batch.times)) == (4, 4)
    assert batch.rows_per_second == pytest.approx(9 * batch.commits_per_second)
    shown = batch.to_json()
    assert {"commits_per_s", "rows_per_s", "commit_p50_ms", "commit_p99_ms"} <= set(shown)
    # What the loops wrote is on disk, read through a new connection.
    db = sqlite3.connect(tmp_path / "raw.db")
    rows = db.execute("SELECT key, length(body), body FROM rows ORDER BY key").fetchall()
    db.close()
    assert [key for key, _, _ in rows] == list(range(9))
    assert {size for _, size, _ in rows} == {500}
    assert len({body for _, _, body in rows}) == 9  # every row's text differs


def test_signal_floor_reads_and_records_every_renamed_file(bench: dict[str, ModuleType],
                                                           tmp_path: Path) -> None:
    latencies = bench["signal_floor"].signal_floor(tmp_path / "signals", tmp_path / "f.db",
                                                   samples=5, gap=0.0)
    assert len(latencies) == 5
    assert all(0 < value < 10 for value in latencies)
    assert sorted(p.name for p in (tmp_path / "signals").iterdir()) == [
        f"floor-{n}.json" for n in range(5)]
    db = sqlite3.connect(tmp_path / "f.db")
    recorded = db.execute("SELECT signal_id, payload FROM signals ORDER BY id").fetchall()
    db.close()
    assert recorded == [(f"floor-{n}", json.dumps({"n": n})) for n in range(5)]


def test_encode_times_a_nested_value_that_round_trips(bench: dict[str, ModuleType]) -> None:
    encode = bench["encode_time"]
    value = encode.nested_value(5_000)
    assert len(json.dumps(value, default=str)) >= 5_000
    depth = value[0]["detail"]["lines"][0]["sku"]  # list > dict > dict > list > dict
    assert isinstance(depth, str)
    times = encode.time_encode(runs=3, target_bytes=5_000)
    assert times.round_trip
    assert times.runs == 3
    assert times.snapshot_bytes > times.value_bytes >= 5_000
    assert 0 < times.snapshot_min <= times.snapshot_median
    assert 0 < times.json_min <= times.json_median


def _figures(one: float, many: float, large: float, large_p99: float, signal_p50: float,
             signal_p99: float, encode: float) -> dict[str, Any]:
    def loop(rate: float, rows: float, p99: float) -> dict[str, float]:
        return {"commits_per_s": rate, "rows_per_s": rows, "commit_p99_ms": p99,
                "commit_p50_ms": p99 / 10}
    return {
        # two measurements of each limit: the stricter one counts
        "raw": {"single_1kb": [loop(1000, 1000, 1), loop(900, 900, 1)],
                "single_100kb": [loop(400, 400, 3), loop(500, 500, 5)],
                "batch_100x1kb": [loop(100, 10_000, 2), loop(90, 9_000, 2)]},
        "signal_floor": [{"p50_ms": 1.5}, {"p50_ms": 1.0}],
        "procctl": {"one_instance_1kb": {"checkpoints_per_s": one,
                                         "interval_p50_ms": 1000 / one},
                    "many_instances_1kb": {"checkpoints_per_s": many},
                    "one_instance_100kb": {"checkpoints_per_s": large,
                                           "interval_p50_ms": 1000 / large,
                                           "interval_p99_ms": large_p99},
                    "signal": {"next_step_started": {"p50_ms": signal_p50,
                                                     "p99_ms": signal_p99}}},
        "encode": {"snapshot_dumps_median_ms": encode},
    }


def test_targets_compare_with_the_stricter_limit(bench: dict[str, ModuleType]) -> None:
    issue_targets = bench["targets"].issue_targets
    passing = issue_targets(_figures(one=400, many=1600, large=350, large_p99=6,
                                     signal_p50=2, signal_p99=10, encode=0.3))
    assert all(t.met for t in passing), [t.to_json() for t in passing if not t.met]
    assert [t.limit for t in passing] == [1000, 10_000, 400, 500, 3, 1.0, 10, 0.3]
    # Just past each bound: 39.9 % of 1000/s, 9.9 % of 10,000 rows/s (and < 4x of one
    # instance), 69.8 % of 500/s, a p99 over 2 x 3 ms, a p50 over 2 x 1 ms, over 10 ms
    # and over 0.3 ms.
    failing = issue_targets(_figures(one=399, many=990, large=349, large_p99=6.1,
                                     signal_p50=2.1, signal_p99=10.1, encode=0.31))
    assert not any(t.met for t in failing), [t.to_json() for t in failing if t.met]
    shown = failing[0].to_json()
    assert shown["ratio"] == pytest.approx(0.399)
    assert (shown["target"], shown["met"]) == (">= 40 %", False)


def test_median_shares_take_the_lower_raw_median(bench: dict[str, ModuleType]) -> None:
    shares = bench["targets"].median_shares(_figures(one=500, many=1, large=250,
                                                     large_p99=1, signal_p50=1,
                                                     signal_p99=1, encode=1))
    # raw commit p50: 0.1 ms (1 KB, both), 0.3 ms (100 KB: the lower of 0.3 and 0.5);
    # checkpoint p50: 2 ms and 4 ms
    assert [(s["figure"], round(s["share"], 6)) for s in shares] == [
        ("1 instance, ~1 KB", 0.05), ("1 instance, ~100 KB", 0.075)]


def test_a_large_row_commit_writes_every_page_the_row_fills(bench: dict[str, ModuleType],
                                                            tmp_path: Path) -> None:
    # SQLite writes only the changed overflow pages of a row overwritten at the same size:
    # a raw 100 KB "commit" that changed a few bytes would cost one page, not 25, and be
    # no limit for a checkpoint whose snapshot changes throughout.
    raw = bench["raw_limits"]
    store = raw.RawStore(tmp_path / "raw.db")
    try:
        store.commit_loop(row_bytes=100_000, commits=2)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.commit_loop(row_bytes=100_000, commits=4)
        page = store.db.execute("PRAGMA page_size").fetchone()[0]
        wal = (tmp_path / "raw.db-wal").stat().st_size
    finally:
        store.close()
    frames = wal // (page + 24)
    assert frames >= 4 * 100_000 // page, frames
