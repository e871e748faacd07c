"""Listings of instances by time and by key (procctl list --since/--until/--after), and
the end of an instance's history (procctl show).

Shared by both backends (store/sqlite.py, store/postgres.py), in the SQL both run.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from procctl.store.dbapi import Db
from procctl.store.records import EventRecord, InstanceRecord, Status


class ListingContract(Protocol):
    """The part of the store contract (store/protocol.py) that this module keeps."""

    def instances_page(self, *, status: Status | None = None, process_name: str | None = None,
                       since: str | None = None, until: str | None = None,
                       before: tuple[str, str] | None = None,
                       limit: int = 50) -> list[InstanceRecord]: ...

    def count_events(self, instance_id: str) -> int: ...

    def last_events(self, instance_id: str, limit: int) -> list[EventRecord]: ...

    def instances_changed_after(self, after: tuple[str, str],
                                limit: int) -> list[InstanceRecord]: ...

    def list_definitions(self, limit: int) -> list[DefinitionSummary]: ...


@dataclass(frozen=True)
class DefinitionSummary:
    """A pinned definition without its text (the web view's listing)."""

    sha256: str
    name: str
    version: str | None
    path: str | None
    created_at: str


class ListingOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    agent_id: str | None

    def instances_page(self, *, status: Status | None = None, process_name: str | None = None,
                       since: str | None = None, until: str | None = None,
                       before: tuple[str, str] | None = None,
                       limit: int = 50) -> list[InstanceRecord]:
        """Instances newest first (started_at, then ID, descending), at most `limit`:
        started at or after `since` and before `until` (store timestamps, see
        store/clock.py), with this status and process if given, and after the key
        `before` (the started_at and ID of the last row of the page before), so that
        pages by key give every instance once."""
        clauses: list[str] = []
        args: list[object] = []
        for clause, value in (("status = ?", status), ("process_name = ?", process_name),
                              ("started_at >= ?", since), ("started_at < ?", until)):
            if value is not None:
                clauses.append(clause)
                args.append(str(value))
        if before is not None:
            clauses.append("(started_at, id) < (?, ?)")
            args.extend(before)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT * FROM instances {where} ORDER BY started_at DESC, id DESC LIMIT ?",
            (*args, limit)).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]

    def count_events(self, instance_id: str) -> int:
        """How many history events the instance has."""
        return int(self._db.execute("SELECT COUNT(*) FROM events WHERE instance_id = ?",
                                    (instance_id,)).fetchone()[0])

    def last_events(self, instance_id: str, limit: int) -> list[EventRecord]:
        """The instance's last `limit` history events, oldest first."""
        rows = self._db.execute(
            "SELECT * FROM (SELECT * FROM events WHERE instance_id = ? ORDER BY id DESC"
            " LIMIT ?) AS last ORDER BY id", (instance_id, limit)).fetchall()
        return [EventRecord(**dict(row)) for row in rows]

    def instances_changed_after(self, after: tuple[str, str],
                                limit: int) -> list[InstanceRecord]:
        """Instances whose (updated_at, ID) comes after `after`, the oldest change
        first, at most `limit` (the web view's live updates)."""
        rows = self._db.execute(
            "SELECT * FROM instances WHERE (updated_at, id) > (?, ?)"
            " ORDER BY updated_at, id LIMIT ?", (*after, limit)).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]

    def list_definitions(self, limit: int) -> list[DefinitionSummary]:
        """The newest pinned definitions, at most `limit`, without their text."""
        rows = self._db.execute(
            "SELECT sha256, name, version, path, created_at FROM definitions"
            " ORDER BY created_at DESC, sha256 DESC LIMIT ?", (limit,)).fetchall()
        return [DefinitionSummary(*row) for row in rows]
