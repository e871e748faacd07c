"""Definitions, instances and their history: the rows around the transitions.

Shared by both backends (store/sqlite.py, store/postgres.py): the SQL is SQLite's,
which store/pg_sql.py rewrites where PostgreSQL's differs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

from procctl.store.checkpoints import insert_events
from procctl.store.clock import utc_now
from procctl.store.dbapi import Db
from procctl.store.errors import AmbiguousId, Conflict, NotFound
from procctl.store.paused import prefix_upper
from procctl.store.records import (
    TERMINAL_STATUSES,
    DefinitionRecord,
    EventRecord,
    EventRow,
    InstanceRecord,
    Status,
)

#: the fewest characters of an instance ID that `get_instance` takes as a prefix
MIN_ID_PREFIX = 4
#: how many matching instances an ambiguous prefix's error names
ID_CANDIDATES = 5


class InstanceOps:
    _db: Db
    _write: Callable[[], AbstractContextManager[Db]]
    agent_id: str | None

    # -- definitions -------------------------------------------------------------

    def put_definition(
        self, sha256: str, name: str, version: str | None, path: str | None, source: str,
        children_json: str | None = None,
    ) -> None:
        """Store a definition's exact text once; instances point at it by hash."""
        with self._write() as db:
            db.execute(
                "INSERT OR IGNORE INTO definitions (sha256, name, version, path, source,"
                " created_at, children_json) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha256, name, version, path, source, utc_now(), children_json),
            )

    def get_definition(self, sha256: str) -> DefinitionRecord:
        row = self._db.execute("SELECT * FROM definitions WHERE sha256 = ?", (sha256,)).fetchone()
        if row is None:
            raise NotFound(f"no definition with hash {sha256}")
        return DefinitionRecord(**dict(row))

    # -- instances ---------------------------------------------------------------

    def create_instance(
        self,
        instance_id: str,
        definition_sha256: str,
        process_name: str,
        process_version: str | None,
        params_json: str,
        trigger_json: str,
        parent_id: str | None = None,
        call_key: str | None = None,
        events: Sequence[EventRow] = (),
        pool: str | None = None,
    ) -> InstanceRecord:
        """A new running instance, with `events` (its start) in the same transaction.
        A child (with `parent_id` and `call_key`) is created once: when that parent
        already has a child for that call, it is returned (and no event written)."""
        now = utc_now()
        verb = "INSERT" if parent_id is None else "INSERT OR IGNORE"
        with self._write() as db:
            created = db.execute(
                f"{verb} INTO instances (id, definition_sha256, process_name,"
                " process_version, status, params_json, trigger_json, started_at, updated_at,"
                " parent_id, call_key, owner, pool) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (instance_id, definition_sha256, process_name, process_version, Status.RUNNING,
                 params_json, trigger_json, now, now, parent_id, call_key, self.agent_id,
                 pool),
            )
            if created.rowcount == 1:
                insert_events(db, events)
        if parent_id is not None:
            row = self._db.execute(
                "SELECT * FROM instances WHERE parent_id = ? AND call_key = ?",
                (parent_id, call_key)).fetchone()
            return InstanceRecord(**dict(row))
        return self.get_instance(instance_id)

    def retire_child(self, instance_id: str) -> None:
        """Keep a failed child for its history, but out of its call's way: the next run
        of that call starts a new child."""
        with self._write() as db:
            db.execute("UPDATE instances SET call_key = call_key || '#' || id WHERE id = ?",
                       (instance_id,))

    def find_child(self, parent_id: str, call_key: str) -> InstanceRecord | None:
        row = self._db.execute("SELECT * FROM instances WHERE parent_id = ? AND call_key = ?",
                               (parent_id, call_key)).fetchone()
        return None if row is None else InstanceRecord(**dict(row))

    def get_instance(self, instance_id: str) -> InstanceRecord:
        """The instance with this ID, or else the one whose ID starts with it (a prefix
        of at least MIN_ID_PREFIX characters that matches one instance only)."""
        row = self._db.execute("SELECT * FROM instances WHERE id = ?", (instance_id,)).fetchone()
        if row is not None:
            return InstanceRecord(**dict(row))
        return self._instance_by_prefix(instance_id)

    def _instance_by_prefix(self, prefix: str) -> InstanceRecord:
        # A range on the primary key, not LIKE: `%` and `_` are characters of the prefix,
        # and the comparison is case-sensitive as the IDs are.
        upper = prefix_upper(prefix)
        where = "id > ? AND id < ?" if upper is not None else "id > ?"
        bounds: tuple[str, ...] = (prefix, upper) if upper is not None else (prefix,)
        count = int(self._db.execute(f"SELECT COUNT(*) FROM instances WHERE {where}",
                                     bounds).fetchone()[0]) if prefix else 0
        if count == 0:
            raise NotFound(f"no instance {prefix!r}",
                           hint="procctl list shows the instances in this home")
        rows = self._db.execute(
            f"SELECT * FROM instances WHERE {where} ORDER BY started_at DESC, id LIMIT ?",
            (*bounds, ID_CANDIDATES)).fetchall()
        if count == 1 and len(prefix) >= MIN_ID_PREFIX:
            return InstanceRecord(**dict(rows[0]))
        candidates = tuple((str(r["id"]), str(r["process_name"]), str(r["status"]))
                           for r in rows)
        listed = ", ".join(f"{i} ({name}, {status})" for i, name, status in candidates)
        more = f", and {count - len(candidates)} more" if count > len(candidates) else ""
        if len(prefix) < MIN_ID_PREFIX:
            raise AmbiguousId(
                f"instance ID prefix {prefix!r} is too short (give at least {MIN_ID_PREFIX}"
                f" characters); it matches {count} instance(s): {listed}{more}",
                hint="give the full ID, or more of its characters", candidates=candidates)
        raise AmbiguousId(
            f"instance ID prefix {prefix!r} is ambiguous: it matches {count} instances: "
            f"{listed}{more}",
            hint="give more characters of the ID (procctl list shows them)",
            candidates=candidates)

    def list_instances(
        self,
        *,
        status: Status | None = None,
        process_name: str | None = None,
        limit: int = 100,
    ) -> list[InstanceRecord]:
        clauses: list[str] = []
        args: list[object] = []
        if status:
            clauses.append("status = ?")
            args.append(status)
        if process_name:
            clauses.append("process_name = ?")
            args.append(process_name)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self._db.execute(
            f"SELECT * FROM instances {where} ORDER BY started_at DESC LIMIT ?",
            (*args, limit),
        ).fetchall()
        return [InstanceRecord(**dict(row)) for row in rows]

    def count_by_status(self) -> dict[Status, int]:
        rows = self._db.execute("SELECT status, COUNT(*) FROM instances GROUP BY status")
        return {Status(status): int(count) for status, count in rows}

    def finish_instance(
        self,
        instance_id: str,
        status: str,
        *,
        result_json: str | None = None,
        error_json: str | None = None,
        from_statuses: Sequence[str] = (Status.RUNNING,),
    ) -> None:
        """Move an instance to a terminal status, only from one of `from_statuses`
        (Status values; typed str until every caller passes the enum)."""
        if status not in TERMINAL_STATUSES:
            raise ValueError(f"not a terminal status: {status}")
        now = utc_now()
        marks = ", ".join("?" for _ in from_statuses)
        with self._write() as db:
            cursor = db.execute(
                f"UPDATE instances SET status = ?, result_json = ?, error_json = ?,"
                f" ended_at = ?, updated_at = ? WHERE id = ? AND status IN ({marks})",
                (status, result_json, error_json, now, now, instance_id, *from_statuses),
            )
            if cursor.rowcount != 1:
                raise Conflict(f"instance {instance_id} is not {' or '.join(from_statuses)}")
            if status != Status.FAILED:
                # A failed instance keeps its last checkpoint, so it can be retried.
                db.execute("DELETE FROM checkpoints WHERE instance_id = ?", (instance_id,))

    def instances_with_status(self, status: str) -> list[str]:
        rows = self._db.execute("SELECT id FROM instances WHERE status = ?", (status,))
        return [str(row[0]) for row in rows]

    # -- events ------------------------------------------------------------------

    def add_event(
        self,
        instance_id: str,
        kind: str,
        data_json: str = "{}",
        *,
        step_id: str | None = None,
        step_path: str | None = None,
    ) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO events (instance_id, at, kind, step_id, step_path, data_json)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (instance_id, utc_now(), kind, step_id, step_path, data_json),
            )

    def add_events(
        self, batch: Sequence[tuple[str, str, str, str, str | None, str | None]]
    ) -> None:
        """Several events (instance_id, at, kind, data_json, step_id, step_path), one commit."""
        with self._write() as db:
            insert_events(db, batch)

    def events(self, instance_id: str, after_id: int = 0) -> list[EventRecord]:
        rows = self._db.execute(
            "SELECT * FROM events WHERE instance_id = ? AND id > ? ORDER BY id",
            (instance_id, after_id),
        ).fetchall()
        return [EventRecord(**dict(row)) for row in rows]
