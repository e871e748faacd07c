"""The disk's raw limits that procctl's checkpoint figures are compared with.

A plain SQLite file opened the way procctl opens its store (Python's sqlite3, WAL,
synchronous=FULL, autocommit mode with explicit transactions), in the same directory as
the bench's home, so on the same file system. Each loop commits rows of a given size,
one transaction at a time, and times every commit:

- one row per commit: the least a durable checkpoint has to do (its snapshot, in one
  row, on disk before the commit returns);
- 100 rows per commit: what a commit shared by many instances' checkpoints could reach
  at best, in rows per second.

Rows are upserted (`INSERT ... ON CONFLICT DO UPDATE`) over a fixed set of keys, as a
checkpoint replaces its instance's row: one key for the single-row loops, one per row of
a batch for the batched loop. Every row's text differs from the last one's.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from figures import percentile

#: pages beyond the auto-checkpoint threshold written when the WAL is grown
WAL_MARGIN_PAGES = 200


@dataclass(frozen=True)
class CommitLoop:
    """One loop of commits: `commits` transactions of `rows_per_commit` rows each."""

    row_bytes: int
    rows_per_commit: int
    commits: int
    seconds: float  # wall time of the whole loop, first BEGIN to last COMMIT
    times: tuple[float, ...]  # each commit's time, BEGIN to COMMIT returned, seconds

    @property
    def commits_per_second(self) -> float:
        return self.commits / self.seconds

    @property
    def rows_per_second(self) -> float:
        return self.commits * self.rows_per_commit / self.seconds

    @property
    def p50(self) -> float:
        return percentile(list(self.times), 0.50)

    @property
    def p99(self) -> float:
        return percentile(list(self.times), 0.99)

    def to_json(self) -> dict[str, float]:
        return {"row_bytes": self.row_bytes, "rows_per_commit": self.rows_per_commit,
                "commits": self.commits, "seconds": self.seconds,
                "commits_per_s": self.commits_per_second,
                "rows_per_s": self.rows_per_second,
                "commit_p50_ms": self.p50 * 1000, "commit_p99_ms": self.p99 * 1000}


def check_loop(row_bytes: int, commits: int, rows_per_commit: int) -> None:
    if commits < 1 or rows_per_commit < 1 or row_bytes < 16:
        raise ValueError("commits and rows_per_commit >= 1, row_bytes >= 16")


def row_text(serial: int, row_bytes: int) -> str:
    """A row of `row_bytes` characters carrying `serial` every 512 characters, so that
    consecutive rows differ throughout (see RawStore.commit_loop)."""
    blocks = -(-row_bytes // 512)
    return ((f"{serial:016d}" + "r" * 496) * blocks)[:row_bytes]


def connect(path: Path) -> sqlite3.Connection:
    """A connection set up as procctl's store sets up its own (store/sqlite.py)."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    mode = db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        raise RuntimeError(f"{path}: journal_mode is {mode}, not wal")
    db.execute("PRAGMA synchronous = FULL")
    return db


class RawStore:
    """The raw SQLite file: grown once, then any number of commit loops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS rows (key INTEGER PRIMARY KEY,"
                        " body TEXT NOT NULL)")
        self.db.execute("CREATE TABLE IF NOT EXISTS filler (body TEXT NOT NULL)")

    def close(self) -> None:
        self.db.close()

    def wal_bytes(self) -> int:
        wal = self.path.with_name(self.path.name + "-wal")
        return wal.stat().st_size if wal.exists() else 0

    def grow_wal(self) -> int:
        """Grow the WAL file to its working size in one transaction, then empty the
        filler. A fresh WAL file grows with each commit until the first auto-checkpoint,
        and a commit that grows the file also syncs its size (about ten times slower on
        ext4); afterwards SQLite writes over the same file from its start. procctl's
        store is warmed the same way, by running checkpoints before measuring."""
        page = int(self.db.execute("PRAGMA page_size").fetchone()[0])
        pages = int(self.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        chunk = "f" * (page - 100)  # one row a page, give or take
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT INTO filler (body) VALUES (?)",
                            ((chunk,) for _ in range(pages + WAL_MARGIN_PAGES)))
        self.db.execute("COMMIT")
        self.db.execute("DELETE FROM filler")
        return self.wal_bytes()

    def commit_loop(self, row_bytes: int, commits: int,
                    rows_per_commit: int = 1) -> CommitLoop:
        """`commits` transactions, each upserting `rows_per_commit` rows of `row_bytes`
        characters (keys 0 .. rows_per_commit - 1), timed one by one.

        Every 512 characters of a row carry the row's serial number, so each commit
        changes every page the row fills: SQLite writes only the overflow pages whose
        bytes changed when a row is overwritten with one of the same size, and a 100 KB
        row differing in its first bytes alone would cost one page, not 25 (a
        checkpoint's snapshot changes throughout: its loop state comes before the
        variables, so they shift)."""
        check_loop(row_bytes, commits, rows_per_commit)
        sql = ("INSERT INTO rows (key, body) VALUES (?, ?)"
               " ON CONFLICT (key) DO UPDATE SET body = excluded.body")
        times: list[float] = []
        serial = 0
        db = self.db
        began = time.perf_counter()
        for _ in range(commits):
            batch = []
            for key in range(rows_per_commit):
                serial += 1
                batch.append((key, row_text(serial, row_bytes)))
            start = time.perf_counter()
            db.execute("BEGIN IMMEDIATE")
            if rows_per_commit == 1:
                db.execute(sql, batch[0])
            else:
                db.executemany(sql, batch)
            db.execute("COMMIT")
            times.append(time.perf_counter() - start)
        seconds = time.perf_counter() - began
        return CommitLoop(row_bytes, rows_per_commit, commits, seconds, tuple(times))


class CommitLoopStore(Protocol):
    """Where raw loops run: RawStore (SQLite), pg_limits.PgRawStore (PostgreSQL)."""

    def commit_loop(self, row_bytes: int, commits: int,
                    rows_per_commit: int = 1) -> CommitLoop: ...


@dataclass(frozen=True)
class RawLoop:
    """One raw loop to measure: its rows' size, commits, rows per commit."""

    row_bytes: int
    commits: int
    rows_per_commit: int = 1


def measure(store: CommitLoopStore, loop: RawLoop) -> CommitLoop:
    """The loop, after a tenth as many unmeasured commits of its own kind."""
    store.commit_loop(loop.row_bytes, max(1, loop.commits // 10), loop.rows_per_commit)
    return store.commit_loop(loop.row_bytes, loop.commits, loop.rows_per_commit)


def merged(loops: list[CommitLoop]) -> CommitLoop:
    """Slices of one loop, measured apart (between procctl's runs), as one loop."""
    first = loops[0]
    if any((loop.row_bytes, loop.rows_per_commit) != (first.row_bytes, first.rows_per_commit)
           for loop in loops):
        raise ValueError("slices of different loops")
    return CommitLoop(first.row_bytes, first.rows_per_commit,
                      sum(loop.commits for loop in loops),
                      sum(loop.seconds for loop in loops),
                      tuple(t for loop in loops for t in loop.times))


T = TypeVar("T")
L = TypeVar("L")


def beside(limit: Callable[[], L], figure: Callable[[], T]) -> tuple[T, list[L]]:
    """A procctl figure with its limit measured right before and right after it."""
    before = limit()
    result = figure()
    return result, [before, limit()]


class Slices:
    """A raw loop measured in slices between procctl's runs (`take` is the `between`
    hook of Bench.throughput), so that both meet the same moments of the machine."""

    def __init__(self, store: CommitLoopStore, loop: RawLoop, slices: int) -> None:
        self.store = store
        self.loop = loop
        self.size = max(1, loop.commits // slices)
        self.taken: list[CommitLoop] = []

    def take(self) -> None:
        if not self.taken:  # unmeasured commits of its own kind first
            self.store.commit_loop(self.loop.row_bytes, max(1, self.loop.commits // 10),
                                   self.loop.rows_per_commit)
        self.taken.append(self.store.commit_loop(self.loop.row_bytes, self.size,
                                                 self.loop.rows_per_commit))

    def result(self) -> list[dict[str, Any]]:
        return [{"when": f"between the runs ({len(self.taken)} slices)",
                 **merged(self.taken).to_json()}]
