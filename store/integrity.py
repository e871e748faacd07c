"""A damaged store is found and refused: the check at open, and SQLite's errors turned
into StoreErrors that name the file (a corrupt file is StoreCorrupt, exit code 6).

`PRAGMA quick_check` reads every page, so its time grows with the file (about 1 s per
GB with the file in the page cache, several out of it). At open it runs under a time
budget: a store that fits the budget (a few hundred MB for the agent) is checked whole
before anything is written to it; for a bigger one the agent goes on checking in the
background (`agent/store_worker.py`). A file that a check may not finish within the
budget (read at CHECK_BYTES_PER_SECOND, what a file out of the page cache allows) is not
started at open: the part a budget would cover proves nothing of the rest, and waiting it
out cost every start of the agent a second and every command of the CLI a quarter of one
at 100,000 paused instances and more (docs/scale.md). Damage is still found: the agent's
check in the background reads it whole, and any read that meets a damaged page fails
as StoreCorrupt.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FunctionType
from typing import Any, TypeVar

from procctl.store.errors import StoreCorrupt, StoreError, StoreFull

SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_CORRUPT = 11
SQLITE_FULL = 13
SQLITE_NOTADB = 26
#: how many problems quick_check reports at most (the first one names a page)
MAX_FINDINGS = 10
#: how fast quick_check is taken to read a file: measured on the bench machine, 1.3 GB/s
#: with the file in the page cache, 0.3 GB/s out of it (a 0.26 GB store did not finish
#: in 0.25 s). A file bigger than the budget times this may not be checked whole within
#: the budget, so the check is not started at open (agent: over 250 MB; CLI: over 62 MB)
CHECK_BYTES_PER_SECOND = 250_000_000

C = TypeVar("C", bound=type)


def store_error(exc: sqlite3.Error, path: Path) -> StoreError | None:
    """The StoreError for a SQLite error about the file, or None for a programming error
    (a constraint or an API misuse is a procctl bug, not a store problem)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError,
                        sqlite3.InterfaceError)):
        return None
    code = (getattr(exc, "sqlite_errorcode", None) or 0) & 0xFF
    detail = str(exc)
    if code in (SQLITE_CORRUPT, SQLITE_NOTADB) or "malformed" in detail:
        return StoreCorrupt.at(path, detail)
    if code == SQLITE_FULL or "full" in detail:
        return StoreFull(f"the disk of the store {path} is full: {detail}",
                         hint="free some space; nothing was half written")
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return StoreError(f"the store {path} stayed locked by another program: {detail}",
                          hint="find what holds it (a backup, an open sqlite3) and try again")
    return StoreError(f"the store {path} cannot be used: {detail}",
                      hint="check the file, its directory and the disk")


def translate_errors(cls: C) -> C:
    """Every public method (and property) of a store class, and those it inherits, turns
    a SQLite error into the matching StoreError (the instance's `path` names the file)."""
    for klass in reversed(cls.__mro__[:-1]):
        for name, value in vars(klass).items():
            if name.startswith("_"):
                continue
            if isinstance(value, FunctionType):
                setattr(cls, name, _translating(value))
            elif isinstance(value, property) and value.fget is not None:
                setattr(cls, name, property(_translating(value.fget)))
    return cls


def _translating(method: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(method, "_translates", False):
        return method

    refusable = method.__name__ != "close"

    @functools.wraps(method)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        refused = getattr(self, "refused", None)
        if refused is not None and refusable:
            raise StoreCorrupt(refused.message, refused.hint)
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            error = store_error(exc, self.path)
            if error is None:
                raise
            raise error from exc

    call._translates = True  # type: ignore[attr-defined]
    return call


def quick_check(db: sqlite3.Connection, path: Path, budget: float | None) -> bool:
    """`PRAGMA quick_check`, stopped after `budget` seconds (None: no limit). True when
    it checked the whole file, False when the budget ran out first (or the file is too
    big for the budget: then it is not started); StoreCorrupt when it found a damaged
    page, index or free list.

    The budget is kept with `interrupt()` from a timer: SQLite's progress handler is not
    called while the b-trees are walked, which on a file not in the page cache takes
    seconds per GB."""
    if budget is not None and (budget <= 0 or _too_big(path, budget)):
        return False
    lock = threading.Lock()
    running = True
    interrupted = False

    def stop() -> None:
        nonlocal interrupted
        with lock:
            if running:  # a late timer must not interrupt a later statement
                interrupted = True
                db.interrupt()

    timer = None if budget is None else threading.Timer(budget, stop)
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        rows = db.execute(f"PRAGMA quick_check({MAX_FINDINGS})").fetchall()
    except sqlite3.OperationalError:
        if interrupted:
            return False
        raise
    finally:
        with lock:
            running = False
        if timer is not None:
            timer.cancel()
    findings = [line for row in rows for line in str(row[0]).splitlines()
                if line and not line.startswith("*** in database")]
    if findings != ["ok"]:
        shown = "; ".join(findings[:3]) + (" ..." if len(findings) > 3 else "")
        raise StoreCorrupt.at(path, f"PRAGMA quick_check found: {shown}")
    return True


def _too_big(path: Path, budget: float) -> bool:
    """Might checking the file take longer than `budget`? (The database file and its
    WAL, which the check reads too.)"""
    size = 0
    for name in (path, path.with_name(path.name + "-wal")):
        with contextlib.suppress(OSError):
            size += name.stat().st_size
    return size > budget * CHECK_BYTES_PER_SECOND


def verify(path: Path, on_connect: Callable[[sqlite3.Connection], None] | None = None,
           ) -> None:
    """Check the whole file on a connection of its own that only reads (for a check in
    the background while another connection writes). StoreCorrupt when it is damaged.
    `on_connect` is given the connection, so that another thread can interrupt it."""
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA query_only = ON")
        if on_connect is not None:
            on_connect(db)
        quick_check(db, path, None)
    except sqlite3.Error as exc:
        error = store_error(exc, path)
        if error is None:
            raise
        raise error from exc
    finally:
        db.close()


class BackgroundCheck:
    """The rest of the check at open, when the budget ran out: the whole file checked
    on a thread and a read-only connection of its own, while the store is in use.
    `on_corrupt` is called (on that thread) when the file turns out to be damaged."""

    def __init__(self, path: Path, on_corrupt: Callable[[StoreCorrupt], None]) -> None:
        self.path = path
        self._on_corrupt = on_corrupt
        self._db: sqlite3.Connection | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="procctl-store-check",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import logging  # here, not at the top: a read command's start-up does without it

        log = logging.getLogger("procctl.store")
        started = time.monotonic()
        log.info("checking the rest of the store in the background", extra={"db": str(self.path)})
        try:
            verify(self.path, on_connect=self._connected)
        except StoreCorrupt as exc:
            if not self._stopping:
                log.error("the store is corrupt: every further store call is refused",
                          extra={"db": str(self.path), "error": exc.message})
                self._on_corrupt(exc)
        except StoreError as exc:
            if not self._stopping:
                log.warning("the background check of the store could not finish",
                            extra={"db": str(self.path), "error": exc.message})
        else:
            log.info("the store checked whole: no damage",
                     extra={"db": str(self.path),
                            "seconds": round(time.monotonic() - started, 3)})

    def _connected(self, db: sqlite3.Connection) -> None:
        self._db = db
        if self._stopping:
            db.interrupt()

    def stop(self) -> None:
        """Interrupt the check (the store is being closed) and wait for its thread."""
        self._stopping = True
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.interrupt()
        self._thread.join(timeout=10)
