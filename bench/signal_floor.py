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


def signal_floor(directory: Path, db_path: Path, samples: int, gap: float = 0.01,
                 timeout: float = 10.0) -> list[float]:
    """`samples` latencies in seconds, one signal file at a time, each waited for and
    followed by `gap` seconds idle (procctl's measurement lets the agent go idle
    between signals too: a thread woken from idle is part of the latency)."""
    directory.mkdir(parents=True, exist_ok=True)
    db = connect(db_path)
    db.execute("CREATE TABLE IF NOT EXISTS signals (id INTEGER PRIMARY KEY,"
               " signal_id TEXT NOT NULL, payload TEXT NOT NULL)")
    recorder = _Recorder(db)
    observer = _observer()
    observer.schedule(recorder, str(directory), recursive=False)
    observer.daemon = True
    observer.start()
    latencies: list[float] = []
    try:
        time.sleep(0.1)  # the watch is in place
        for number in range(samples):
            document = {"correlation_id": f"floor-{number}", "payload": {"n": number},
                        "signal_id": f"floor-{number}"}
            temporary = directory / f"floor-{number}.json.tmp"
            temporary.write_text(json.dumps(document), encoding="utf-8")
            renamed_at = time.perf_counter()
            os.rename(temporary, directory / f"floor-{number}.json")
            latencies.append(recorder.wait(f"floor-{number}.json", timeout) - renamed_at)
            time.sleep(gap)
    finally:
        observer.stop()
        observer.join(timeout=10)
        db.close()
    return latencies
