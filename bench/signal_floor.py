"""The floor under procctl's signal latency: what any program must do at least.

A watchdog observer (the one procctl's agent uses: inotify with full events, on Linux)
watches a directory. The bench writes `n.json.tmp`, takes the time, renames it to
`n.json` (the signals directory's protocol), and on the rename's event the handler reads
the file, decodes its JSON and commits one row to a WAL + synchronous=FULL SQLite file:
noticing, reading and durably recording a signal. The latency is rename to commit done,
timed with one clock in one process. procctl does that and more before the instance's
next step starts (checks the signal, finds the checkpoint, applies it, resumes the
instance, starts the step).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from pathlib import Path

from raw_limits import connect
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver


def _observer() -> BaseObserver:
    """The platform's observer, with full events on Linux as in agent/watcher.py."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except Exception:  # not Linux
        return Observer()
    return InotifyObserver(generate_full_events=True)


class _Recorder(FileSystemEventHandler):
    """Reads, decodes and records each renamed-in `.json` file; notes when it is done."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.done: dict[str, float] = {}
        self.failure: BaseException | None = None
        self.arrived = threading.Condition()

    def on_moved(self, event: FileSystemEvent) -> None:
        target = os.fsdecode(event.dest_path)
        if not target.endswith(".json"):
            return
        try:
            document = json.loads(Path(target).read_text(encoding="utf-8"))
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT INTO signals (signal_id, payload) VALUES (?, ?)",
                            (str(document["signal_id"]), json.dumps(document["payload"])))
            self.db.execute("COMMIT")
            finished = time.perf_counter()
        except BaseException as exc:  # reported to the waiting bench, not lost here
            with self.arrived:
                self.failure = exc
                self.arrived.notify_all()
            raise
        with self.arrived:
            self.done[Path(target).name] = finished
            self.arrived.notify_all()

    def wait(self, name: str, timeout: float) -> float:
        with self.arrived:
            if not self.arrived.wait_for(
                    lambda: name in self.done or self.failure is not None, timeout):
                raise RuntimeError(f"signal floor: no event for {name} within {timeout} s")
            if self.failure is not None:
                raise RuntimeError(f"signal floor: {self.failure!r}") from self.failure
            return self.done[name]


class SignalFloor:
    """An observed directory and its SQLite file; `sample()` measures one signal.

    Used as a context manager, so that its samples can be taken one at a time between
    procctl's own (the same moments of a shared machine for both)."""

    def __init__(self, directory: Path, db_path: Path, timeout: float = 10.0) -> None:
        self.directory = directory
        self.db_path = db_path
        self.timeout = timeout
        self.count = 0
        self.latencies: list[float] = []
        self._db: sqlite3.Connection | None = None
        self._recorder: _Recorder | None = None
        self._observer: BaseObserver | None = None

    def __enter__(self) -> SignalFloor:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._db = connect(self.db_path)
        self._db.execute("CREATE TABLE IF NOT EXISTS signals (id INTEGER PRIMARY KEY,"
                         " signal_id TEXT NOT NULL, payload TEXT NOT NULL)")
        self._recorder = _Recorder(self._db)
        self._observer = _observer()
        self._observer.schedule(self._recorder, str(self.directory), recursive=False)
        self._observer.daemon = True
        self._observer.start()
        time.sleep(0.1)  # the watch is in place
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
        if self._db is not None:
            self._db.close()

    def sample(self) -> float:
        """One signal file, written, renamed and waited for: its latency in seconds."""
        assert self._recorder is not None, "use SignalFloor as a context manager"
        number = self.count
        self.count += 1
        document = {"correlation_id": f"floor-{number}", "payload": {"n": number},
                    "signal_id": f"floor-{number}"}
        temporary = self.directory / f"floor-{number}.json.tmp"
        temporary.write_text(json.dumps(document), encoding="utf-8")
        renamed_at = time.perf_counter()
        os.rename(temporary, self.directory / f"floor-{number}.json")
        latency = self._recorder.wait(f"floor-{number}.json", self.timeout) - renamed_at
        self.latencies.append(latency)
        return latency


def signal_floor(directory: Path, db_path: Path, samples: int, gap: float = 0.01,
                 timeout: float = 10.0) -> list[float]:
    """`samples` latencies in seconds, one signal file at a time, each waited for and
    followed by `gap` seconds idle (procctl's measurement lets the agent go idle
    between signals too: a thread woken from idle is part of the latency)."""
    with SignalFloor(directory, db_path, timeout) as floor:
        for _ in range(samples):
            floor.sample()
            time.sleep(gap)
    return floor.latencies
