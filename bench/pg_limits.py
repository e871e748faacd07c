"""PostgreSQL's side of the bench: the server, a database of the bench's own on it, and
the raw commit loops that procctl's figures on that server are compared with.

The raw loops are raw_limits.py's, on the server: psycopg 3, one connection in
autocommit mode with explicit `BEGIN` ... `COMMIT` (as procctl's PgStore writes), rows
upserted into a table of text rows (text, as procctl's snapshots are), every row's text
differing from the last one's. A commit returns once the server has flushed its WAL
(the bench reports `fsync` and `synchronous_commit` as the server has them).
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from raw_limits import CommitLoop, check_loop, row_text

#: the server settings a durable commit depends on, reported with the figures
SETTINGS = ("server_version", "fsync", "synchronous_commit", "wal_sync_method",
            "full_page_writes", "shared_buffers")
TESTS = Path(__file__).resolve().parents[1] / "tests"


class BenchSetupError(Exception):
    """The bench cannot get a PostgreSQL server or a database on it (one line)."""


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise BenchSetupError(f"psycopg cannot be imported ({exc}): "
                              "pip install 'psycopg[binary]>=3.1'") from None
    return psycopg


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def database_url(url: str, dbname: str) -> str:
    """`url` (a libpq URL or key=value settings) naming the database `dbname` instead, as
    key=value settings (libpq reads both)."""
    conninfo = _psycopg().conninfo
    settings = conninfo.conninfo_to_dict(url)
    settings["dbname"] = dbname
    return str(conninfo.make_conninfo(**settings))


@contextmanager
def bench_database(url: str, keep: bool = False) -> Iterator[str]:
    """A new database on the server `url` reaches (`procctl_bench_<hex>`), dropped at
    the end unless `keep`; yields its URL. The bench writes nothing to the database the
    URL names, so a user's store is never touched."""
    from procctl.store.urls import redacted

    psycopg = _psycopg()
    name = f"procctl_bench_{uuid.uuid4().hex[:10]}"
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        raise BenchSetupError(f"cannot reach the PostgreSQL server at {redacted(url)}: "
                              f"{_first_line(exc)}") from None
    try:
        with conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as exc:
        problem = _first_line(exc)
        raise BenchSetupError(
            f"cannot create the bench's database on {redacted(url)}: {problem} (the bench "
            "makes a database of its own, procctl_bench_..., and drops it afterwards: "
            "give it a role with CREATEDB, or use --pg-throwaway)") from None
    try:
        yield database_url(url, name)
    finally:
        if keep:
            print(f"  kept the database {name} on {redacted(url)}", file=sys.stderr)
        else:
            with suppress(psycopg.Error), psycopg.connect(url, autocommit=True,
                                                          connect_timeout=10) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def throwaway_server() -> Iterator[str]:
    """A throwaway cluster as the tests start one (tests/pg_server.py: initdb in a
    temporary directory, a private Unix socket, fsync on), stopped and removed at the
    end; yields a URL to its `postgres` database."""
    _psycopg()
    sys.path.insert(0, str(TESTS))
    try:
        import pg_server
    except ImportError as exc:
        raise BenchSetupError(f"--pg-throwaway needs tests/pg_server.py and pytest "
                              f"(pip install -e '.[test]'): {exc}") from None
    finally:
        sys.path.remove(str(TESTS))
    try:
        server = pg_server.start_server()
    except pg_server.PgUnavailable as exc:
        raise BenchSetupError(f"no throwaway PostgreSQL server: {exc}") from None
    try:
        yield server.url()
    finally:
        server.close()


def server_facts(url: str) -> dict[str, str]:
    """The server's version and the settings that decide what a commit costs."""
    psycopg = _psycopg()
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
        return {name: str(conn.execute(f"SHOW {name}").fetchone()[0]) for name in SETTINGS}


class PgRawStore:
    """The raw loops' table on the server: any number of commit loops, each timed commit
    by commit (the same interface as raw_limits.RawStore)."""

    def __init__(self, url: str) -> None:
        self.db = _psycopg().connect(url, autocommit=True, connect_timeout=10)
        self.db.execute("CREATE TABLE IF NOT EXISTS bench_raw_rows"
                        " (key integer PRIMARY KEY, body text NOT NULL)")

    def close(self) -> None:
        self.db.close()

    def stored_bytes(self) -> int:
        """What the last 100 KB-class row takes in the table (TOAST may compress it)."""
        row = self.db.execute("SELECT max(pg_column_size(body)) FROM bench_raw_rows"
                              " WHERE key = 0").fetchone()
        return int(row[0] or 0)

    def commit_loop(self, row_bytes: int, commits: int,
                    rows_per_commit: int = 1) -> CommitLoop:
        """`commits` transactions, each upserting `rows_per_commit` rows of `row_bytes`
        characters (keys 0 .. rows_per_commit - 1), timed from BEGIN to COMMIT returned;
        a batch goes in one `executemany` (psycopg pipelines it)."""
        check_loop(row_bytes, commits, rows_per_commit)
        sql = ("INSERT INTO bench_raw_rows (key, body) VALUES (%s, %s)"
               " ON CONFLICT (key) DO UPDATE SET body = excluded.body")
        times: list[float] = []
        serial = 0
        db = self.db
        cursor = db.cursor()
        began = time.perf_counter()
        for _ in range(commits):
            batch = []
            for key in range(rows_per_commit):
                serial += 1
                batch.append((key, row_text(serial, row_bytes)))
            start = time.perf_counter()
            cursor.execute("BEGIN")
            if rows_per_commit == 1:
                cursor.execute(sql, batch[0])
            else:
                cursor.executemany(sql, batch)
            cursor.execute("COMMIT")
            times.append(time.perf_counter() - start)
        seconds = time.perf_counter() - began
        return CommitLoop(row_bytes, rows_per_commit, commits, seconds, tuple(times))
