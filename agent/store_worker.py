"""Runs every store call of the agent on one dedicated thread, in order.

SQLite commits with synchronous=FULL wait for the disk; doing them on this thread keeps
the event loop (and every other instance) running meanwhile. A call that finds the disk
full (opening the store included) waits for free space and is tried again; calls that
fail otherwise are reported to the agent's health.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import ParamSpec, TypeVar

from procctl.agent.faults import failing
from procctl.agent.health import Health
from procctl.store import StoreContract, open_store
from procctl.store.errors import Conflict, Fenced, NotFound, StoreError, StoreUnreachable
from procctl.store.sqlite import CHECK_BUDGET_AT_START
from procctl.store.urls import redacted

T = TypeVar("T")
P = ParamSpec("P")
log = logging.getLogger("procctl.store")

#: an I/O error with less free space than this on the store's file system is a full disk
NEARLY_FULL_BYTES = 1 << 20
#: history events wait this long (seconds) for a transaction to ride along with
EVENT_DELAY = 0.2


class StoreWorker:
    def __init__(self, path: Path, health: Health | None = None, *,
                 url: str | None = None) -> None:
        self.health = health or Health()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="procctl-store")
        self._path = path
        #: the PostgreSQL store's location (None: the SQLite file at `path`)
        self.url = url
        #: called (on the store thread) when the store refuses this agent's writes
        #: because its lease ran out (store/agents.py)
        self.on_fenced: Callable[[Fenced], None] | None = None
        self._store: StoreContract | None = None
        self._events: deque[tuple[str, str, str, str, str | None, str | None]] = deque()
        self._events_lock = threading.Lock()
        #: when the oldest event in `_events` was queued (monotonic), None when empty
        self._events_since: float | None = None
        self._closing = False
        self._wake = threading.Event()  # ends a wait for disk space at close
        #: set when the agent stops: a store call no longer waits for the server
        self._stop_waiting = threading.Event()
        self._event_timer: threading.Timer | None = None

    async def open(self) -> None:
        """Open the store on the store thread; on a full disk, once space is free."""
        await self._run(self._open)

    def _open(self) -> None:
        # Checked for damage for up to a second before anything is written; a bigger
        # file is checked whole in the background (store/integrity.py).
        self._store = open_store(self._path, url=self.url, check_budget=CHECK_BUDGET_AT_START,
                                 check_rest_in_background=True)

    @property
    def store(self) -> StoreContract:
        if self._store is None:
            raise RuntimeError("the store is not open")
        return self._store

    async def call(self, method: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run `method` (a bound Store method) on the store thread. Typed with the
        method's own signature, so mypy checks the arguments of every call."""
        return await self._run(method, *args, **kwargs)

    async def call_once(self, method: Callable[P, T], *args: P.args,
                        **kwargs: P.kwargs) -> T:
        """`call`, but a store that cannot be reached fails it at once instead of
        being waited for (what a stopping agent still tries to write)."""
        loop = asyncio.get_running_loop()
        name = getattr(method, "__name__", "call").lstrip("_")
        return await loop.run_in_executor(self._executor, partial(
            self._until_space, partial(method, *args, **kwargs), name, wait_for_store=False))

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        loop = asyncio.get_running_loop()
        name = getattr(fn, "__name__", "call").lstrip("_")
        return await loop.run_in_executor(
            self._executor, partial(self._until_space, partial(fn, *args, **kwargs), name))

    def _until_space(self, call: Callable[[], T], name: str, *,
                     wait_for_store: bool = True) -> T:
        """Run a store call; while the disk is full, wait and try again.

        A transaction that hits a full disk is rolled back whole (the step is not
        marked done, the signal not consumed); the work goes on once space is free.
        The history events queued before the call are handed to the store first.
        """
        delay = 0.1
        waited = False
        while True:
            try:
                self._hand_over_events()
                if failing(f"store.{name}"):
                    raise sqlite3.DatabaseError(
                        f"database disk image is malformed (fault point store.{name})")
                result = call()
            except Fenced as exc:
                self._waited(waited)
                if self.on_fenced is not None:
                    self.on_fenced(exc)
                raise
            except StoreUnreachable as exc:
                # The server is down or restarting: wait for it as for disk space. (A
                # commit whose answer was lost is tried again: each transition checks
                # the status it starts from, so one that did commit is refused.)
                if self._closing or not wait_for_store or self._stop_waiting.is_set():
                    self._waited(waited)
                    raise
                if not waited:
                    log.error("store unreachable: store calls wait for it", extra={
                        "store": self.url and redacted(self.url), "error": str(exc),
                        "call": name})
                    self.health.waiting_for_store(f"{name}: {exc}")
                    waited = True
                self._stop_waiting.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            except (sqlite3.Error, StoreError, OSError) as exc:
                if self._closing or not disk_full(exc, self._path):
                    self._waited(waited)  # what it waited for is over: another error
                    if is_store_failure(exc):
                        self.health.failed("store", exc)
                    raise
                if not waited:
                    what = ("the store opens once space is free" if name == "open"
                            else "store writes wait for free space")
                    log.error("disk full: %s", what, extra={
                        "db": str(self._path), "error": str(exc), "call": name})
                    self.health.waiting_for_disk(f"{name}: {exc}")
                    waited = True
                self._wake.wait(delay)
                delay = min(delay * 2, 5.0)
                continue
            if waited:
                self.health.disk_free()
                self.health.store_back()
                log.warning("disk space is free again: the store goes on" if self.url is None
                            else "the store answers again: store calls go on",
                            extra={"db": (self.url and redacted(self.url)) or str(self._path),
                                   "call": name})
            self.health.succeeded("store")
            return result

    def _waited(self, waited: bool) -> None:
        """A call that waited (for space, for the server) ended otherwise: the agent's
        health no longer says it waits."""
        if waited:
            self.health.disk_free()
            self.health.store_back()

    def add_event_soon(self, instance_id: str, at: str, kind: str, data_json: str,
                       step_id: str | None, step_path: str | None) -> None:
        """Queue a history event: it rides along with the next write transaction.

        Every store call starts by handing the events queued so far to the store, on
        the store thread (first in, first out), so a status change made after this call
        commits the event in the same transaction: the history is complete whenever an
        instance's status changes. No thread hand-off per event: a timer writes them
        alone when no call comes within EVENT_DELAY. Only a crash can lose the last few.
        """
        with self._events_lock:
            self._events.append((instance_id, at, kind, data_json, step_id, step_path))
            if self._events_since is not None:
                return
            self._events_since = time.monotonic()
        self._arm_event_timer(EVENT_DELAY)

    def _hand_over_events(self) -> None:
        """On the store thread: the queued events go to the store's own queue, which the
        next write transaction writes."""
        if not self._events or self._store is None:
            return
        with self._events_lock:
            batch = list(self._events)
            self._events.clear()
            self._events_since = None
        self._store.queue_events(batch)

    def _flush_events(self) -> None:
        """Hand the queued events to the store now (at close)."""
        self._hand_over_events()

    def _arm_event_timer(self, delay: float) -> None:
        with self._events_lock:
            if self._event_timer is not None or self._closing:
                return
            timer = threading.Timer(max(delay, 0.0), self._events_due)
            timer.daemon = True
            self._event_timer = timer
        timer.start()

    def _events_due(self) -> None:
        with contextlib.suppress(RuntimeError):  # the executor is shut down: closing
            self._executor.submit(self._write_due_events)

    def _write_due_events(self) -> None:
        with self._events_lock:
            self._event_timer = None
            waiting = self._events_since
        if self._store is None:
            return
        due_in = self._store.queued_events_due_in(EVENT_DELAY)
        if waiting is not None:  # not handed over yet: they wait from when they came
            mine = waiting + EVENT_DELAY - time.monotonic()
            due_in = mine if due_in is None else min(due_in, mine)
        if due_in is None:
            return
        if due_in > 0:  # a transaction took the earlier ones: wait for these
            self._arm_event_timer(due_in)
            return
        self._until_space(self._store.write_queued_events, "add_events")

    def stop_waiting_for_store(self) -> None:
        """The agent stops: a call waiting for an unreachable server fails now, and
        later ones fail at once (what they would write is recovered at the next start,
        by this agent or a peer)."""
        self._stop_waiting.set()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._store is not None:
            try:  # the history queued so far; a store that fails now is reported by close
                await self._run(self._flush_events)
                await self._run(self._store.write_queued_events)
            except Exception as exc:
                log.error("the last history events could not be written: %s", exc)
            await self._run(self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)


def is_store_failure(error: BaseException) -> bool:
    """An error that says the store does not work (not a row's state: NotFound and
    Conflict are answers; a constraint is the caller's to handle)."""
    if isinstance(error, StoreError):
        return not isinstance(error, NotFound | Conflict)
    return isinstance(error, sqlite3.DatabaseError) and not isinstance(
        error, sqlite3.IntegrityError)


def disk_full(error: BaseException, path: Path) -> bool:
    """Does this error of a store call (or its cause) mean the disk is full?

    SQLite says "database or disk is full" (SQLITE_FULL) when a write finds no space;
    a WAL index that cannot grow is an I/O error (SQLITE_IOERR_SHMSIZE, which is what
    opening the store on a full disk meets), so any I/O error counts when the file
    system is (nearly) out of space; creating a file is an OSError (ENOSPC).
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(current, sqlite3.Error):
            name = str(getattr(current, "sqlite_errorname", "") or "")
            if name == "SQLITE_FULL" or "disk is full" in str(current):
                return True
            if name.startswith("SQLITE_IOERR") or "disk I/O error" in str(current):
                return _out_of_space(path)
        current = current.__cause__ or current.__context__
    return False


def _out_of_space(path: Path) -> bool:
    try:
        info = os.statvfs(path.parent)
    except OSError:
        return False
    blocks = info.f_bfree if os.geteuid() == 0 else info.f_bavail
    return blocks * info.f_frsize < NEARLY_FULL_BYTES or info.f_favail == 0
