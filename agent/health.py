"""What the agent tells `procctl agent status` about itself: its state, how far its
start-up has come, and the parts that keep failing.

States, in the order they win: `stopping`, `waiting_for_disk` (a store call waits for
free space), `waiting_for_store` (a store call waits for the PostgreSQL server),
`degraded` (the scheduler or the store failed DEGRADED_AFTER times in a
row), `starting` (the store is being opened, interrupted instances recovered, waiting
signal files applied), `ready`.

The store thread reports here too, so every method is safe to call from any thread.
"""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from typing import Any

from procctl.store.clock import utc_now

DEGRADED_AFTER = 3

#: start-up phases, in order
OPENING_STORE = "opening_store"
RECOVERING = "recovering"
SIGNAL_FILES = "signal_files"
DONE = "done"


@dataclass
class Failure:
    """A part of the agent that failed `count` times in a row, since `since`."""

    count: int
    since: str
    last_at: str
    error: str

    def to_json(self, component: str) -> dict[str, Any]:
        return {"component": component, "failures": self.count, "since": self.since,
                "last_at": self.last_at, "error": self.error,
                "degraded": self.count >= DEGRADED_AFTER}


@dataclass
class Progress:
    done: int = 0
    total: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total}


@dataclass
class Health:
    phase: str = OPENING_STORE
    recovery: Progress = field(default_factory=Progress)
    signal_files: Progress = field(default_factory=Progress)
    ready_at: str | None = None
    stopping: bool = False
    #: (since, error) while a store call waits for free disk space
    disk_wait: tuple[str, str] | None = None
    #: (since, error) while a store call waits for the store's server to answer
    store_wait: tuple[str, str] | None = None
    failures: dict[str, Failure] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # -- start-up ------------------------------------------------------------------

    def enter(self, phase: str) -> None:
        self.phase = phase
        if phase == DONE:
            self.ready_at = utc_now()

    def recovered(self, done: int, total: int) -> None:
        self.recovery = Progress(done, total)

    def signal_file_progress(self, done: int, total: int) -> None:
        self.signal_files = Progress(done, total)

    # -- trouble -------------------------------------------------------------------

    def waiting_for_disk(self, error: str) -> None:
        with self._lock:
            if self.disk_wait is None:
                self.disk_wait = (utc_now(), error)

    def disk_free(self) -> None:
        with self._lock:
            self.disk_wait = None

    def waiting_for_store(self, error: str) -> None:
        with self._lock:
            if self.store_wait is None:
                self.store_wait = (utc_now(), error)

    def store_back(self) -> None:
        with self._lock:
            self.store_wait = None

    def failed(self, component: str, error: BaseException) -> Failure:
        """One more failure in a row of `component` (e.g. "scheduler", "store"); a
        copy of its record."""
        now = utc_now()
        text = f"{type(error).__name__}: {error}"
        with self._lock:
            known = self.failures.get(component)
            if known is None:
                known = self.failures[component] = Failure(1, now, now, text)
            else:
                known.count += 1
                known.last_at = now
                known.error = text
            return dataclasses.replace(known)

    def succeeded(self, component: str) -> Failure | None:
        """`component` worked: the failures in a row it ends, if any."""
        if component not in self.failures:  # the common case takes no lock
            return None
        with self._lock:
            return self.failures.pop(component, None)

    # -- the report ----------------------------------------------------------------

    def state(self) -> str:
        with self._lock:
            if self.stopping:
                return "stopping"
            if self.disk_wait is not None:
                return "waiting_for_disk"
            if self.store_wait is not None:
                return "waiting_for_store"
            if any(f.count >= DEGRADED_AFTER for f in self.failures.values()):
                return "degraded"
        return "ready" if self.phase == DONE else "starting"

    def to_json(self) -> dict[str, Any]:
        state = self.state()
        with self._lock:
            disk = (None if self.disk_wait is None
                    else {"since": self.disk_wait[0], "error": self.disk_wait[1]})
            server = (None if self.store_wait is None
                      else {"since": self.store_wait[0], "error": self.store_wait[1]})
            problems = [f.to_json(name) for name, f in sorted(self.failures.items())]
        return {
            "state": state,
            "startup": {"phase": self.phase, "instances": self.recovery.to_json(),
                        "signal_files": self.signal_files.to_json(),
                        "ready_at": self.ready_at},
            "disk_wait": disk,
            "store_wait": server,
            "problems": problems,
        }
