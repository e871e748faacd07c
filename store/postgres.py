"""The PostgreSQL store: the same contract as the SQLite one, for several agents on
several hosts (docs/multi-host.md).

One psycopg connection in autocommit mode; a write transaction is BEGIN ... COMMIT
under READ COMMITTED. What SQLite's one write lock gave for free is made explicit:

- every status change is a conditional UPDATE (`... WHERE status = ?`), safe as it is;
- the transactions that read an instance's status and then act on it by correlation ID
  (a signal's delivery, a pause that looks for held signals) take a transaction-scoped
  advisory lock on that ID first (`_lock_keys`), so that a delivery never reads an
  instance as running while its pause commits unseen (multi-agent.md, "The trap");
- an agent's write transaction first checks, row-locked, that its lease is current
  (`_fence`): an agent frozen past its lease and woken again writes nothing more.

A lost connection is opened again at the next call; the call that met it fails with
StoreUnreachable (the agent waits and tries again, as on a full disk).
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FunctionType
from typing import Any, TypeVar

from procctl.store.agents import AgentOps
from procctl.store.cancelling import CancelOps
from procctl.store.checkpoints import CheckpointOps
from procctl.store.errors import Conflict, Fenced, StoreError, StoreUnreachable
from procctl.store.instances import InstanceOps
from procctl.store.listing import ListingOps
from procctl.store.paused import PausedQueries
from procctl.store.pg_schema import CREATE, MIGRATIONS, PG_SCHEMA_VERSION, SCHEMA_LOCK
from procctl.store.pg_sql import row_factory, translate
from procctl.store.records import EventRow
from procctl.store.retention import RetentionOps
from procctl.store.signals import SignalOps
from procctl.store.urls import redacted, require_driver

C = TypeVar("C", bound=type)
#: seconds to wait for the server when connecting
CONNECT_TIMEOUT = 10


class PgConnection:
    """A psycopg connection that runs the store's SQLite-dialect SQL (store/pg_sql.py)
    and opens itself again after the connection was lost."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: Any = None
        self.in_transaction = False
        self.connect()

    def connect(self) -> None:
        import psycopg

        self._conn = psycopg.connect(self.url, autocommit=True, row_factory=row_factory,
                                     connect_timeout=CONNECT_TIMEOUT,
                                     application_name="procctl")

    def execute(self, sql: str, params: Any = (), /) -> Any:
        if self._conn.closed and not self.in_transaction:
            self.connect()
        return self._conn.execute(translate(sql), params if params else None)

    def close(self) -> None:
        self._conn.close()


def _error(exc: Exception, where: str) -> StoreError | None:
    """A psycopg error as the store's error, or None when it is not one."""
    import psycopg

    if not isinstance(exc, psycopg.Error):
        return None
    if isinstance(exc, psycopg.errors.UniqueViolation):
        return Conflict(f"another writer stored the same key at the same moment: "
                        f"{str(exc).splitlines()[0]}", hint="try again")
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return StoreUnreachable(
            f"the store {where} cannot be reached: {str(exc).strip().splitlines()[0]}",
            hint="check that the PostgreSQL server runs and accepts this user "
                 "(see docs/multi-host.md)")
    return StoreError(f"the store {where} failed: {str(exc).strip().splitlines()[0]}")


def translate_pg_errors(cls: C) -> C:
    """Every public method of the class (and those it inherits) turns a psycopg error
    into the store's own (the instance's `location` names the server)."""
    seen: set[str] = set()
    for klass in cls.__mro__[:-1]:  # the class's own first: an override wins
        for name, value in list(vars(klass).items()):
            if name in seen:
                continue
            seen.add(name)
            if not name.startswith("_") and isinstance(value, FunctionType):
                setattr(cls, name, _translating(value))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except Exception as exc:
            error = _error(exc, self.location)
            if error is None:
                raise
            raise error from exc

    return call


@translate_pg_errors
class PgStore(AgentOps, InstanceOps, CheckpointOps, PausedQueries, SignalOps, CancelOps,
              RetentionOps, ListingOps):
    """One connection to a PostgreSQL store. Not shared between threads.

    `read_only=True` (the read commands of the CLI) never creates or migrates the
    schema; otherwise a store without the schema gets it, created once under an
    advisory lock whoever else connects at the same moment.
    """

    NOW_SECONDS = "extract(epoch from clock_timestamp())"
    CLAIM_LOCK = "FOR UPDATE SKIP LOCKED"
    shared = True

    _db: PgConnection

    def __init__(self, url: str, path: Path, *, read_only: bool = False) -> None:
        require_driver(url)
        self.url = url
        self.location = redacted(url)
        self.path = path
        self.file_schema = PG_SCHEMA_VERSION
        self.commits = 0
        self._lock = threading.Lock()
        try:
            self._db = PgConnection(url)
            if read_only:
                self.file_schema = self._version()
                if self.file_schema == 0:
                    raise StoreError(f"the store {self.location} holds no procctl schema",
                                     hint="start an agent with this store_url first")
            else:
                self._create_or_migrate()
        except Exception as exc:
            error = _error(exc, self.location)
            if error is None:
                raise
            raise error from exc

    def _version(self) -> int:
        exists = self._db.execute("SELECT to_regclass('procctl_schema')").fetchone()[0]
        if exists is None:
            return 0
        row = self._db.execute("SELECT max(version) FROM procctl_schema").fetchone()
        return int(row[0] or 0)

    def _create_or_migrate(self) -> None:
        version = self._version()
        if version > PG_SCHEMA_VERSION:
            raise StoreError(
                f"the store {self.location} has schema version {version}, newer than this "
                f"procctl understands ({PG_SCHEMA_VERSION})",
                hint="upgrade procctl on this host; the store was left untouched")
        if version == PG_SCHEMA_VERSION:
            return
        conn = self._db._conn
        # A session lock, then a new transaction: one that waited for the lock would
        # still look tables up in the catalogue as it was before the wait.
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK,))
        try:
            version = self._version()  # another agent may have done it meanwhile
            with conn.transaction():
                if version == 0:
                    conn.execute(CREATE)
                for number in range(version + 1, PG_SCHEMA_VERSION + 1):
                    if version and number in MIGRATIONS:
                        conn.execute(MIGRATIONS[number])
                        conn.execute("UPDATE procctl_schema SET version = %s", (number,))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK,))
        self.file_schema = version or PG_SCHEMA_VERSION

    @property
    def schema_version(self) -> int:
        return self._version()

    def changed_since_open(self) -> bool:
        return False

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[PgConnection]:
        """A write transaction; an agent's is fenced by its lease first."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.in_transaction = True
            carried: list[EventRow] = []
            try:
                self._fence()
                carried = self._take_queued_events(self._db)
                yield self._db
            except BaseException:
                with contextlib.suppress(Exception):  # a lost connection rolled back
                    self._db.execute("ROLLBACK")
                self._db.in_transaction = False
                self._requeue_events(carried)
                raise
            else:
                try:
                    self._db.execute("COMMIT")
                except BaseException:
                    # The session was lost in the commit: the server rolled it back (or,
                    # rarely, committed it and the answer was lost: the events may then be
                    # written twice); the next call connects again.
                    self._db.in_transaction = False
                    self._requeue_events(carried)
                    raise
                self._db.in_transaction = False
                self.commits += 1

    def _fence(self) -> None:
        """An agent writes only while its lease is current: its row is locked until
        this transaction ends, so a takeover (which needs the lease to have run out)
        waits for it or came first."""
        if self.incarnation is None:
            return
        row = self._db.execute(
            f"SELECT 1 FROM agents WHERE id = ? AND incarnation = ? AND stopped_at IS NULL"
            f" AND lease_until > {self.NOW_SECONDS} FOR SHARE",
            (self.agent_id, self.incarnation)).fetchone()
        if row is None:
            raise Fenced(
                f"agent {self.agent_id} lost its lease on the store {self.location}: "
                "other agents may have taken over its instances, so it writes nothing more",
                hint="it stops; start it again (systemd does) and it rejoins as a new agent")

    def _lock_keys(self, db: Any, *keys: str | None) -> None:
        for key in sorted({key for key in keys if key is not None}):
            db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (key,))

    # -- what SQLite keeps in its own catalogue -----------------------------------------

    def _has_index(self, name: str) -> bool:
        return False  # no INDEXED BY here: PostgreSQL's planner picks by statistics

    def has_statistics(self) -> bool:
        row = self._db.execute(
            "SELECT count(*) FROM pg_stat_user_tables WHERE relname IN"
            " ('instances', 'checkpoints') AND (last_analyze IS NOT NULL OR"
            " last_autoanalyze IS NOT NULL)").fetchone()
        return int(row[0]) == 2

    def optimize(self) -> str:
        """ANALYZE the tables the paused queries read (autovacuum also does)."""
        self._db.execute("ANALYZE instances")
        self._db.execute("ANALYZE checkpoints")
        return "analyze"

    def integrity_check(self) -> str:
        return "ok"
