"""The SQLite store: WAL, synchronous=FULL, busy timeout, writes in BEGIN IMMEDIATE.

Status changes are conditional UPDATEs (`... WHERE status = ?`), so the agent, the CLI
and a purge can share the file without races.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from procctl.store.agents import AgentOps
from procctl.store.cancelling import CancelOps
from procctl.store.checkpoints import CheckpointOps
from procctl.store.errors import NotFound, StoreCorrupt, StoreError
from procctl.store.files import check_store_files
from procctl.store.instances import ID_CANDIDATES as ID_CANDIDATES  # re-exported
from procctl.store.instances import MIN_ID_PREFIX as MIN_ID_PREFIX  # re-exported
from procctl.store.instances import InstanceOps
from procctl.store.integrity import (
    BackgroundCheck,
    quick_check,
    store_error,
    translate_errors,
)
from procctl.store.listing import ListingOps
from procctl.store.paused import PausedQueries
from procctl.store.reading import ReadOnlyFile, show_as_current
from procctl.store.records import TERMINAL_STATUSES as TERMINAL_STATUSES  # re-exported
from procctl.store.records import (
    EventRow,
)
from procctl.store.retention import RetentionOps
from procctl.store.schema import MIGRATIONS, SCHEMA_VERSION
from procctl.store.signals import SignalOps

BUSY_TIMEOUT_MS = 30_000
#: seconds `PRAGMA quick_check` may take at open (see store/integrity.py): a command
#: of the CLI pays it on every call, the agent once at start
CHECK_BUDGET = 0.25
#: the budget of a process that opens the store once and keeps it (the agent), which
#: then checks the rest in the background
CHECK_BUDGET_AT_START = 1.0


@translate_errors
class Store(AgentOps, InstanceOps, CheckpointOps, PausedQueries, SignalOps, CancelOps,
            RetentionOps, ListingOps):
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

    _db: sqlite3.Connection

    def __init__(self, path: Path, *, must_exist: bool = False, read_only: bool = False,
                 check_budget: float | None = CHECK_BUDGET,
                 check_rest_in_background: bool = False) -> None:
        self.path = Path(path)
        #: where the store is, for messages
        self.location = str(self.path)
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

    def integrity_check(self) -> str:
        return str(self._db.execute("PRAGMA integrity_check").fetchone()[0])
