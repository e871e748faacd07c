"""Runs every store call of the agent on one dedicated thread, in order.

SQLite commits with synchronous=FULL wait for the disk; doing them on this thread keeps
the event loop (and every other instance) running meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from procctl.store import Store

T = TypeVar("T")
log = logging.getLogger("procctl.store")


class StoreWorker:
    def __init__(self, path: Path) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="procctl-store")
        self._path = path
        self._store: Store | None = None
        self._events: deque[tuple[str, str, str, str, str | None, str | None]] = deque()
        self._events_lock = threading.Lock()
        self._flush_queued = False
        self._closing = False

    async def open(self) -> None:
        self._store = await self._run(Store, self._path)

    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("the store is not open")
        return self._store

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run `method` (a bound Store method) on the store thread."""
        return await self._run(method, *args, **kwargs)

    async def _run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, partial(self._until_space, partial(fn, *args, **kwargs)))

    def _until_space(self, call: Callable[[], T]) -> T:
        """Run a store call; while the disk is full, wait and try again.

        A transaction that hits a full disk is rolled back whole (the step is not
        marked done, the signal not consumed); the work goes on once space is free.
        """
        delay = 0.1
        warned = False
        while True:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if "full" not in str(exc) or self._closing:
                    raise
                if not warned:
                    log.error("disk full: store writes wait for free space",
                              extra={"db": str(self._path), "error": str(exc)})
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def add_event_soon(self, instance_id: str, at: str, kind: str, data_json: str,
                       step_id: str | None, step_path: str | None) -> None:
        """Queue a history event; queued events are written together, in one transaction.

        Any store call made after this one runs after the event is written (the store
        thread is first in, first out), so the history is complete whenever an
        instance's status changes. Only a crash can lose the last few events.
        """
        with self._events_lock:
            self._events.append((instance_id, at, kind, data_json, step_id, step_path))
            if self._flush_queued:
                return
            self._flush_queued = True
        self._executor.submit(self._flush_events)

    def _flush_events(self) -> None:
        with self._events_lock:
            self._flush_queued = False
            batch = list(self._events)
            self._events.clear()
        if batch:
            self._until_space(lambda: self.store.add_events(batch))

    async def close(self) -> None:
        self._closing = True
        if self._store is not None:
            await self._run(self._store.close)
            self._store = None
        self._executor.shutdown(wait=True)
