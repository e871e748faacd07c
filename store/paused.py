"""Queries over paused instances: the scheduler's due resumes and expiries, listings.

Read-only: each is one SELECT on the store's connection. At a million paused
instances these decide idle CPU and the time of `list-paused`, so each must use an index.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from procctl.store.records import CheckpointRecord, InstanceRecord, PausedRow


class PausedQueries:
    _db: sqlite3.Connection

    def due_resumes(self, now: str) -> list[str]:
        rows = self._db.execute(
            "SELECT c.instance_id FROM checkpoints c JOIN instances i ON i.id = c.instance_id "
            "WHERE c.resume_at IS NOT NULL AND c.resume_at <= ? AND i.status = 'paused' "
            "ORDER BY c.resume_at", (now,))
        return [str(r[0]) for r in rows]

    def expired(self, now: str) -> list[tuple[str, str | None]]:
        """(instance id, on_expire policy JSON) of paused or failed instances past TTL."""
        rows = self._db.execute(
            "SELECT c.instance_id, c.on_expire_json FROM checkpoints c "
            "JOIN instances i ON i.id = c.instance_id "
            "WHERE c.expires_at IS NOT NULL AND c.expires_at < ? "
            "AND i.status IN ('paused', 'failed') ORDER BY c.expires_at", (now,))
        return [(str(r[0]), r[1]) for r in rows]

    def count_paused(self) -> int:
        return int(self._db.execute(
            "SELECT COUNT(*) FROM instances WHERE status = 'paused'").fetchone()[0])

    def list_paused(self, *, process_name: str | None = None,
                    limit: int = 1000) -> list[PausedRow]:
        clause = "AND i.process_name = ?" if process_name else ""
        args: tuple[Any, ...] = (process_name, limit) if process_name else (limit,)
        rows = self._db.execute(
            "SELECT i.*, c.step_id AS c_step_id, c.correlation_id AS c_correlation_id,"
            " c.size AS c_size, c.iteration AS c_iteration, c.created_at AS c_created_at,"
            " c.expires_at AS c_expires_at, c.resume_at AS c_resume_at,"
            " c.on_expire_json AS c_on_expire_json FROM instances i"
            " JOIN checkpoints c ON c.instance_id = i.id"
            f" WHERE i.status = 'paused' {clause} ORDER BY i.paused_at DESC LIMIT ?",
            args).fetchall()
        return [_paused_row(dict(row)) for row in rows]

    def paused_at_calls(self, prefix: str) -> list[InstanceRecord]:
        """Paused instances whose correlation ID starts with `prefix` (the agent names
        a parent paused at a call so: agent/calls.py)."""
        rows = self._db.execute(
            "SELECT * FROM instances WHERE status = 'paused' AND substr(correlation_id, 1, ?)"
            " = ?", (len(prefix), prefix)).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]


def _paused_row(row: dict[str, Any]) -> PausedRow:
    checkpoint = CheckpointRecord(
        instance_id=row["id"], step_id=row.pop("c_step_id"),
        correlation_id=row.pop("c_correlation_id"), snapshot_json="", size=row.pop("c_size"),
        iteration=row.pop("c_iteration"), created_at=row.pop("c_created_at"),
        expires_at=row.pop("c_expires_at"), resume_at=row.pop("c_resume_at"),
        on_expire_json=row.pop("c_on_expire_json"), commit_value_json=None)
    return PausedRow(InstanceRecord(**row), checkpoint)

