"""The PostgreSQL store's schema is created once, whoever connects at the same moment."""

from __future__ import annotations

import threading
from pathlib import Path

from pg_server import require_psycopg

from procctl.store import open_store
from procctl.store.pg_schema import PG_SCHEMA_VERSION

psycopg = require_psycopg()


def test_connections_opening_an_empty_database_at_once_all_succeed(
        pg_url: str, tmp_path: Path) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def open_one() -> None:
        start.wait()
        try:
            open_store(tmp_path / "unused.db", url=pg_url).close()
        except BaseException as exc:  # kept for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM procctl_schema").fetchall() == [
            (PG_SCHEMA_VERSION,)]
