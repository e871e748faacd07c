"""The store's side of a checkpoint, and the template fast path, measured in-process.

    python bench/group_commit.py                 # the store on the system's temp dir
    python bench/group_commit.py --dir /dev/shm  # no disk: the CPU cost alone

Prints, for group commits of 1 and of 50 checkpoints (~1.2 KB snapshots, 5 history
events each, as the checkpoint bench's loop writes them): SQL statements per commit,
WAL pages written per checkpoint, and CPU time (of this thread: SQLite runs in it) and
wall time per checkpoint; then the time of one evaluation of a few templates with the
fast path (agent/plain_templates.py) and with Jinja alone. Compare versions by running
this with each on the same machine at the same time (the machine's load is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procctl.agent.expressions import Expression, compile_condition, compile_template
from procctl.store import Store
from procctl.store.clock import utc_now

SNAPSHOT = '{"x": "' + "y" * 1200 + '"}'
EVENTS = ("step_started", "checkpoint_saved", "step_finished", "step_started",
          "step_finished")
INSTANCES = 50


def _store(directory: Path) -> tuple[Store, list[int]]:
    store = Store(directory / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    for n in range(INSTANCES):
        store.create_instance(f"i{n}", "sha", "p", "1", "{}", "{}")
    statements = [0]
    store._db.set_trace_callback(lambda _: statements.__setitem__(0, statements[0] + 1))
    return store, statements


def _commits(store: Store, size: int, rounds: int, tag: str) -> None:
    for r in range(rounds):
        group = [f"i{n}" for n in range(size)]
        store.queue_events([(i, utc_now(), kind, '{"kind": "checkpoint"}', "save",
                             "each/save") for i in group for kind in EVENTS])
        outcomes = store.save_checkpoints([
            {"instance_id": i, "step_id": "save", "correlation_id": f"c-{i}-{tag}-{r}",
             "snapshot_json": SNAPSHOT, "expires_at": None} for i in group])
        assert not any(isinstance(o, Exception) for o in outcomes), outcomes


def measure_store(directory: Path, size: int, rounds: int) -> dict[str, float]:
    store, statements = _store(directory)
    try:
        _commits(store, size, max(1, 200 // size), "warm")  # the WAL file grows first
        before = statements[0]
        cpu, wall = time.thread_time(), time.perf_counter()
        _commits(store, size, rounds, "timed")
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        per_commit = (statements[0] - before) / rounds
        # WAL pages: with automatic checkpoints off, the frames the WAL holds afterwards
        store._db.execute("PRAGMA wal_autocheckpoint = 0")
        store._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        counted = max(1, 100 // size)
        _commits(store, size, counted, "pages")
        frames = store._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]
        store._db.execute("PRAGMA wal_autocheckpoint = 1000")
    finally:
        store.close()
    checkpoints = size * rounds
    return {"statements": per_commit, "pages": frames / (counted * size),
            "cpu_us": cpu / checkpoints * 1e6, "wall_us": wall / checkpoints * 1e6}


def _time(work: Callable[[], Any], runs: int = 20_000) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        work()
    return (time.perf_counter() - started) / runs * 1e6


def measure_templates() -> list[tuple[str, float, float]]:
    context = {"order": "A-17", "i": 7, "blob": "x" * 400,
               "process": {"instance_id": "0a1b2c3d4e5f", "name": "bench"}}
    rows = []
    cases: list[Expression] = [
        compile_template("approval-{{ order }}"),
        compile_template("bench-{{ process.instance_id }}-{{ i }}"),
        compile_template("{{ order }}"), compile_condition("blob == ''")]
    for expression in cases:
        names = {field.name for field in dataclasses.fields(expression)}
        # a version without the fast path: both columns are Jinja
        jinja = (dataclasses.replace(expression, _plain=None, _parts=None)
                 if "_plain" in names else expression)
        assert expression.evaluate(context) == jinja.evaluate(context)
        rows.append((expression.source, _time(lambda e=expression: e.evaluate(context)),
                     _time(lambda e=jinja: e.evaluate(context))))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="where to make the temporary store (default: the system's "
                             "temporary directory)")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f} (1 minute), {os.cpu_count()} cores")
    print("\ngroup commit        statements/commit  WAL pages/ckpt  cpu us/ckpt  wall us/ckpt")
    for size, rounds in ((1, 500), (INSTANCES, 40)):
        directory = Path(tempfile.mkdtemp(prefix="procctl-commit-", dir=args.dir))
        try:
            row = measure_store(directory, size, rounds)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        print(f"{size:3d} checkpoint(s)    {row['statements']:17.0f}  {row['pages']:14.1f}"
              f"  {row['cpu_us']:11.1f}  {row['wall_us']:12.1f}")
    print("\ntemplate                                    fast path us  Jinja us")
    for source, fast, jinja in measure_templates():
        print(f"{source!r:44}  {fast:12.1f}  {jinja:8.1f}")


if __name__ == "__main__":
    main()
