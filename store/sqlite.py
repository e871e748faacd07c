"""The SQLite store: WAL, synchronous=FULL, busy timeout, writes in BEGIN IMMEDIATE.

Status changes are conditional UPDATEs (`... WHERE status = ?`), so the agent, the CLI
and a purge can share the file without races.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from procctl.store.checkpoints import CheckpointOps, insert_events
from procctl.store.clock import utc_now
from procctl.store.errors import AmbiguousId, Conflict, NotFound, StoreCorrupt, StoreError
from procctl.store.files import check_store_files
from procctl.store.integrity import (
    BackgroundCheck,
    quick_check,
    store_error,
    translate_errors,
)
from procctl.store.paused import PausedQueries, prefix_upper
from procctl.store.reading import ReadOnlyFile, show_as_current
from procctl.store.records import TERMINAL_STATUSES as TERMINAL_STATUSES  # re-exported
from procctl.store.records import (
    DefinitionRecord,
    EventRecord,
    EventRow,
    InstanceRecord,
    Status,
)
from procctl.store.schema import MIGRATIONS, SCHEMA_VERSION
from procctl.store.signals import SignalOps

BUSY_TIMEOUT_MS = 30_000
#: seconds `PRAGMA quick_check` may take at open (see store/integrity.py): a command
#: of the CLI pays it on every call, the agent once at start
CHECK_BUDGET = 0.25
#: the budget of a process that opens the store once and keeps it (the agent), which
#: then checks the rest in the background
CHECK_BUDGET_AT_START = 1.0
#: the fewest characters of an instance ID that `get_instance` takes as a prefix
MIN_ID_PREFIX = 4
#: how many matching instances an ambiguous prefix's error names
ID_CANDIDATES = 5


@translate_errors
class Store(CheckpointOps, PausedQueries, SignalOps):
    """One connection to `<home>/procctl.db`. Not shared between threads.

    `must_exist=True` opens an existing file without creating it (an older schema is
    migrated). `read_only=True` (the read commands of the CLI; they work while the
    agent is down) opens an existing file to read and never writes it: no WAL switched
    on, no migration, no file created (see store/reading.py); an older schema reads as
    the current one, with what it lacks empty, and `file_schema` says which it is.

    Before anything is written, the files are checked (no links, no other owner, not
    writable by others) and the database is checked for damage for up to
    `check_budget` seconds (None: the whole file); `checked_whole` says whether that
    check covered the whole file. If it did not, `check_rest_in_background` (the
    agent's choice) checks the whole file on a thread of its own, and a damaged file
    makes every later call fail. A SQLite error from any public method is a StoreError
    (StoreCorrupt for a damaged file).
    """

    def __init__(self, path: Path, *, must_exist: bool = False, read_only: bool = False,
                 check_budget: float | None = CHECK_BUDGET,
                 check_rest_in_background: bool = False) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        #: set when the check in the background found the file damaged: every call
        #: but close() then raises StoreCorrupt
        self.refused: StoreCorrupt | None = None
        self._background: BackgroundCheck | None = None
        #: how a read-only store was opened (None: opened to write)
        self._reading: ReadOnlyFile | None = None
        #: the schema version of the file when it was opened (before any migration)
        self.file_schema = SCHEMA_VERSION
        check_store_files(self.path)
        if (must_exist or read_only) and not self.path.exists():
            raise NotFound(
                f"no store at {self.path}",
                hint="run a process first (procctl run FILE), or pass the right --home",
            )
        self.checked_whole = False
        try:
            if read_only:
                self._db = self._connect_read_only(check_budget)
            else:
                self._db = self._connect(must_exist, check_budget)
                self._check_and_migrate()
        except sqlite3.Error as exc:
            error = store_error(exc, self.path)
            if error is None:
                raise
            raise error from exc
        if check_rest_in_background and not self.checked_whole:
            self._background = BackgroundCheck(self.path, self._refuse)

    def _refuse(self, error: StoreCorrupt) -> None:
        self.refused = error

    def _connect(self, must_exist: bool, check_budget: float | None) -> sqlite3.Connection:
        if not must_exist:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            os.close(fd)
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
            check_same_thread=False,
        )
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        try:
            # Before anything is switched on: switching a newer or a damaged store to
            # WAL, or migrating it, would already write to it.
            self._refuse_newer(db)
            self.checked_whole = quick_check(db, self.path, check_budget)
        except BaseException:
            db.close()
            raise
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = FULL")
        db.execute("PRAGMA foreign_keys = ON")
        return db

    def _connect_read_only(self, check_budget: float | None) -> sqlite3.Connection:
        self._reading = ReadOnlyFile(self.path)
        db = sqlite3.connect(self._reading.uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                             isolation_level=None, check_same_thread=False)
        db.row_factory = sqlite3.Row
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            self._refuse_newer(db)
            self.checked_whole = quick_check(db, self.path, check_budget)
            if self.file_schema < SCHEMA_VERSION:
                show_as_current(db)
        except BaseException:
            db.close()
            raise
        return db

    def _refuse_newer(self, db: sqlite3.Connection) -> int:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"the store {self.path} has schema version {version}, newer than this "
                f"procctl understands ({SCHEMA_VERSION}): an older procctl cannot read a "
                "newer store",
                hint="upgrade procctl; the file was left untouched",
            )
        self.file_schema = version
        return version

    def changed_since_open(self) -> bool:
        """For a store opened read-only without its WAL files (no agent had it open):
        did a writer open it since? Then what was read may be torn; read it again (the
        next opening uses the writer's WAL files). False for any other store."""
        return self._reading is not None and self._reading.changed()

    def _check_and_migrate(self) -> None:
        version = self._refuse_newer(self._db)
        if version == SCHEMA_VERSION:
            return
        with self._write() as db:
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            for number in range(version + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {number}")

    @property
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        if self._background is not None:
            self._background.stop()
        self._db.close()

    #: write transactions committed through this object (the bench reads it: agent status)
    commits = 0

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE takes the write lock up front."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            carried: list[EventRow] = []
            try:
                carried = self._take_queued_events(self._db)  # they ride along
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._requeue_events(carried)
                raise
            else:
                self._db.execute("COMMIT")
                self.commits += 1

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
                " parent_id, call_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (instance_id, definition_sha256, process_name, process_version, Status.RUNNING,
                 params_json, trigger_json, now, now, parent_id, call_key),
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

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
