"""The store's side of a checkpoint on PostgreSQL beside SQLite, in-process.

    python bench/pg_store_side.py --pg-throwaway     # a throwaway cluster (tests/pg_server.py)
    python bench/pg_store_side.py --store-url URL    # a database of its own on your server

The same group commits as bench/group_commit.py (a ~1.2 KB snapshot and 5 history events
per checkpoint, groups of 1 and of 50), through `PgStore` on the server and the SQLite
`Store` in a temporary directory, alternating, twice each: the median wall time of a
commit and the CPU time of this thread, per checkpoint. Beside them, on the same server,
raw transactions of 3 statements (`BEGIN`, one 1 KB upsert, `COMMIT`: the raw loop of
bench/checkpoints.py) and of 8 (5 one-row `SELECT`s more, as many statements as a
checkpoint sends), and the round trip of `SELECT 1`: how much of a checkpoint is the
server and how much the agent's own work.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from figures import table
from group_commit import EVENTS, INSTANCES, SNAPSHOT
from pg_limits import BenchSetupError, bench_database, throwaway_server

from procctl.store import StoreContract, open_store
from procctl.store.clock import utc_now


def _prepare(store: StoreContract) -> None:
    store.put_definition("sha", "p", "1", None, "source")
    for n in range(INSTANCES):
        store.create_instance(f"i{n}", "sha", "p", "1", "{}", "{}")


def group_commits(store: StoreContract, size: int, rounds: int, tag: str) -> dict[str, float]:
    """`rounds` commits of `size` checkpoints: median wall and thread CPU per checkpoint."""
    times = []
    cpu = time.thread_time()
    for r in range(rounds):
        group = [f"i{n}" for n in range(size)]
        start = time.perf_counter()
        store.queue_events([(i, utc_now(), kind, '{"kind": "checkpoint"}', "save",
                             "each/save") for i in group for kind in EVENTS])
        outcomes = store.save_checkpoints([
            {"instance_id": i, "step_id": "save", "correlation_id": f"c-{i}-{tag}-{r}",
             "snapshot_json": SNAPSHOT, "expires_at": None} for i in group])
        times.append(time.perf_counter() - start)
        if any(isinstance(o, Exception) for o in outcomes):
            raise RuntimeError(f"a checkpoint was refused: {outcomes}")
    return {"wall_p50_ms": statistics.median(times) * 1000 / size,
            "cpu_ms": (time.thread_time() - cpu) * 1000 / (rounds * size)}


def raw_transactions(url: str, selects: int, commits: int) -> float:
    """The median time of a transaction of `selects` one-row SELECTs and a 1 KB upsert."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.cursor()
        cursor.execute("CREATE TABLE IF NOT EXISTS side_rows (key integer PRIMARY KEY,"
                       " body text NOT NULL)")
        times = []
        for n in range(commits):
            start = time.perf_counter()
            cursor.execute("BEGIN")
            for _ in range(selects):
                cursor.execute("SELECT 1 FROM side_rows WHERE key = %s", (0,))
            cursor.execute("INSERT INTO side_rows VALUES (0, %s) ON CONFLICT (key)"
                           " DO UPDATE SET body = excluded.body", (f"{n:016d}" + "r" * 1008,))
            cursor.execute("COMMIT")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000


def round_trip(url: str, count: int = 1000) -> float:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.cursor()
        times = []
        for _ in range(count):
            start = time.perf_counter()
            cursor.execute("SELECT 1")
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000


def measure(url: str, directory: Path) -> dict[str, Any]:
    stores = {"SQLite": open_store(directory / "procctl.db"),
              "PostgreSQL": open_store(directory / "unused.db", url=url)}
    rows: dict[tuple[str, int], list[dict[str, float]]] = {}
    try:
        for store in stores.values():
            _prepare(store)
        for attempt in range(2):
            for name, store in stores.items():
                group_commits(store, 1, 50, f"warm{attempt}")
                for size in (1, 50):
                    rows.setdefault((name, size), []).append(
                        group_commits(store, size, max(4, 400 // size), f"{attempt}-{size}"))
    finally:
        for store in stores.values():
            store.close()
    return {"groups": {f"{name} {size}": runs for (name, size), runs in rows.items()},
            "raw_3_ms": [raw_transactions(url, 0, 500) for _ in range(2)],
            "raw_8_ms": [raw_transactions(url, 5, 500) for _ in range(2)],
            "round_trip_ms": round_trip(url)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--store-url", metavar="URL")
    where.add_argument("--pg-throwaway", action="store_true")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    try:
        with ExitStack() as stack:
            server = args.store_url or stack.enter_context(throwaway_server())
            url = stack.enter_context(bench_database(server))
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            result = measure(url, directory)
    except BenchSetupError as exc:
        sys.exit(f"bench: {exc}")
    print(f"The store's side of a checkpoint, per checkpoint (load {load:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after; two tries each)\n")
    print(table(["store, group of", "commit p50", "CPU of this thread"],
                [[key, " / ".join(f"{r['wall_p50_ms']:.3f} ms" for r in runs),
                  " / ".join(f"{r['cpu_ms']:.3f} ms" for r in runs)]
                 for key, runs in result["groups"].items()]))
    print("\nRaw transactions on the same server (median): 3 statements "
          + " / ".join(f"{t:.3f} ms" for t in result["raw_3_ms"]) + ", 8 statements "
          + " / ".join(f"{t:.3f} ms" for t in result["raw_8_ms"])
          + f"; SELECT 1 round trip {result['round_trip_ms']:.3f} ms")


if __name__ == "__main__":
    main()
