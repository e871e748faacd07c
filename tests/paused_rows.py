"""Many paused instances in a real store, quickly: rows written to the store's own
tables in one transaction (what tests of scale need; the agent's way, three fsync'd
transactions per instance, would take minutes). Shaped as the agent writes them."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

from procctl.store import Store
from procctl.store.clock import utc_now

DEFINITION = "d" * 64


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds")


def fill(store: Store, count: int, *, start: int = 0, expired_every: int = 10,
         process: str = "p", mixed: bool = True) -> None:
    """`count` instances `i0000000`... at correlation IDs `order-0000000`...: paused
    over the last 20 days, every `expired_every`-th past its TTL (a day ago), the rest
    with a month left. With `mixed`, every 97th is completed, failed (keeping its
    checkpoint) or running instead."""
    now = datetime.now(UTC)
    db = sqlite3.connect(store.path, isolation_level=None)
    try:
        db.execute("BEGIN")
        db.execute("INSERT OR IGNORE INTO definitions (sha256, name, source, created_at)"
                   " VALUES (?, 'p', 'source', ?)", (DEFINITION, utc_now()))
        for n in range(start, start + count):
            paused_at = now - timedelta(seconds=n * 37 % 86_400, days=n % 20)
            expired = n % expired_every == 0
            expires_at = paused_at + (timedelta(days=-1) if expired else timedelta(days=30))
            status = ("completed", "failed", "running")[n % 3] if mixed and not n % 97 \
                else "paused"
            instance_id, correlation_id = f"i{n:07d}", f"order-{n:07d}"
            db.execute(
                "INSERT INTO instances (id, definition_sha256, process_name, status,"
                " params_json, trigger_json, started_at, updated_at, paused_at,"
                " correlation_id) VALUES (?, ?, ?, ?, '{}', '{}', ?, ?, ?, ?)",
                (instance_id, DEFINITION, process, status, _iso(paused_at), _iso(paused_at),
                 _iso(paused_at) if status == "paused" else None, correlation_id))
            if status != "completed":
                db.execute(
                    "INSERT INTO checkpoints (instance_id, step_id, correlation_id,"
                    " snapshot_json, size, created_at, expires_at) VALUES (?, 'wait', ?,"
                    " '{}', 2, ?, ?)",
                    (instance_id, correlation_id, _iso(paused_at), _iso(expires_at)))
        db.execute("COMMIT")
    finally:
        db.close()
