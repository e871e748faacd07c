"""Watchdog on the signals directory: turns file events into paths on a queue.

It only reports; reading and validating a file is the intake's job. Renames into the
directory (the protocol's last step) and files closed after writing are reported; a
periodic scan catches whatever events were missed or overflowed.

The watch is recursive so that it also covers processed/ and rejected/: moving a
settled file there is then a rename inside the watched tree, whose two inotify halves
pair at once. With only the top directory watched, that move is a lone IN_MOVED_FROM,
which watchdog holds for half a second waiting for its pair, and every event behind
it (the next signal's rename) waits too.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

from watchdog.events import (
    DirMovedEvent,
    FileClosedEvent,
    FileMovedEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver

from procctl.agent.signals import PROCESSED, REJECTED, is_signal_name


class _Handler(FileSystemEventHandler):
    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[Path],
                 directory: Path) -> None:
        self.loop = loop
        self.queue = queue
        self.directory = directory

    def _report(self, raw: str | bytes) -> None:
        path = Path(os.fsdecode(raw))
        if path.parent == self.directory and is_signal_name(path.name):
            self.loop.call_soon_threadsafe(self.queue.put_nowait, path)

    def on_moved(self, event: DirMovedEvent | FileMovedEvent) -> None:
        self._report(event.dest_path)

    def on_closed(self, event: FileClosedEvent) -> None:
        self._report(event.src_path)


def _observer() -> BaseObserver:
    """The platform's observer. With inotify, full events: a file moved in from another
    directory (a lone IN_MOVED_TO) is then reported as a move, not as a creation, so it
    is seen at once too, not only by the next scan."""
    try:
        from watchdog.observers.inotify import InotifyObserver
    except Exception:  # not Linux: the platform's own observer
        return Observer()
    return InotifyObserver(generate_full_events=True)


class SignalWatcher:
    def __init__(self, directory: Path, queue: asyncio.Queue[Path]) -> None:
        self.directory = directory
        self.queue = queue
        self._observer: Observer | None = None  # type: ignore[valid-type]

    def start(self) -> None:
        handler = _Handler(asyncio.get_running_loop(), self.queue, self.directory)
        for folder in (PROCESSED, REJECTED):  # watched from the start (see the top)
            (self.directory / folder).mkdir(mode=0o700, exist_ok=True)
        observer = _observer()
        observer.schedule(handler, str(self.directory), recursive=True)
        observer.daemon = True
        observer.start()
        self._observer = observer

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None
