"""Retention: finished instances (completed, failed, cancelled) removed with their
history once they ended longer ago than a cut, old signal records that resumed nothing,
and old files in the signals directory's processed/ and rejected/ folders.

`procctl purge --finished --older-than D` walks one `FinishedPass` to its end; the
agent's clock (`RetentionClock`, called at every scheduler tick) starts a pass with the
`retention` setting as the cut every RETENTION_INTERVAL and takes one small batch of
it per tick, so a backlog never holds the store thread long. `retention = "0"` keeps
everything: the clock does nothing. The clock leaves the signal files alone: `procctl
signals --clear --older-than D` removes them (`old_signal_files`).
"""

from __future__ import annotations

import logging
import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from procctl.agent.durations import parse_duration
from procctl.agent.signals import PROCESSED, REJECTED
from procctl.store.clock import utc_after
from procctl.store.retention import FinishedKey, FinishedRow, Purged

if TYPE_CHECKING:
    from procctl.agent.store_worker import StoreWorker
    from procctl.store import StoreContract

log = logging.getLogger("procctl.retention")

#: how often the agent starts a retention pass (seconds; the first at its start)
RETENTION_INTERVAL = 300.0
#: instances the agent purges per tick during a pass (a tick comes every 0.25 s)
CLOCK_BATCH = 100
#: after a batch, the clock rests this many times as long as the batch took, so a
#: backlog takes at most a quarter of the store thread's time
CLOCK_REST = 3.0


def retention_seconds(value: object) -> float | None:
    """The `retention` setting in seconds; None for 0: keep everything."""
    seconds = parse_duration(value)
    return seconds if seconds > 0 else None


def cut_before(older_than: float) -> str:
    """The store timestamp `older_than` seconds ago: what ended before it is older."""
    return utc_after(-older_than)


@dataclass
class FinishedPass:
    """One walk through the finished instances that ended before `before`, a page at a
    time, each page read from where the last ended: it ends, whatever finishes
    meanwhile."""

    before: str
    after: FinishedKey | None = None
    done: bool = False
    purged: int = 0

    def next_page(self, store: StoreContract, limit: int) -> list[FinishedRow]:
        """The next page (a dry run reads only these)."""
        rows = store.finished_page(self.before, after=self.after, limit=limit)
        if rows:
            self.after = rows[-1].key
        self.done = len(rows) < limit
        return rows

    def purge_next(self, store: StoreContract, limit: int) -> tuple[list[FinishedRow], Purged]:
        """The next page, purged in one transaction: the rows read, and what went (an
        instance retried meanwhile stays)."""
        rows = self.next_page(store, limit)
        purged = store.purge_finished([row.instance_id for row in rows], self.before)
        self.purged += len(purged.instance_ids)
        return rows, purged


@dataclass
class RetentionClock:
    """What the agent's clock does for the `retention` setting."""

    worker: StoreWorker
    #: seconds; None keeps everything
    retention: float | None
    interval: float = RETENTION_INTERVAL
    batch: int = CLOCK_BATCH
    rest: float = CLOCK_REST
    _next: float = field(default=0.0, init=False)
    #: no batch before this moment (monotonic): the rest after the last one
    _rested: float = field(default=0.0, init=False)
    _pass: FinishedPass | None = field(default=None, init=False)
    _signals_left: bool = field(default=False, init=False)
    _signals_cleared: int = field(default=0, init=False)

    @classmethod
    def from_settings(cls, worker: StoreWorker, settings: dict[str, object]) -> RetentionClock:
        return cls(worker, retention_seconds(settings["retention"]))

    async def step(self) -> None:
        """One batch of the pass under way, or a new pass when one is due; nothing
        otherwise (a monotonic clock read)."""
        if self.retention is None or time.monotonic() < self._rested:
            return
        started = time.monotonic()
        try:
            await self._step(self.retention)
        finally:
            self._rested = time.monotonic() + (time.monotonic() - started) * self.rest

    async def _step(self, retention: float) -> None:
        if self._pass is None and not self._signals_left:
            if time.monotonic() < self._next:
                return
            self._next = time.monotonic() + self.interval
            self._pass = FinishedPass(cut_before(retention))
            self._signals_left, self._signals_cleared = True, 0
        store = self.worker.store
        if self._pass is not None:
            await self.worker.call(self._pass.purge_next, store, self.batch)
            if self._pass.done:
                if self._pass.purged:
                    log.info("retention: purged %d finished instance(s) that ended before %s",
                             self._pass.purged, self._pass.before,
                             extra={"purged": self._pass.purged, "before": self._pass.before})
                self._pass = None
            return
        before = cut_before(retention)
        cleared = await self.worker.call(store.clear_old_signals, before, self.batch)
        self._signals_cleared += cleared
        if cleared < self.batch:
            self._signals_left = False
            if self._signals_cleared:
                log.info("retention: cleared %d rejected, unmatched or duplicate signal "
                         "record(s) received before %s", self._signals_cleared, before,
                         extra={"cleared": self._signals_cleared, "before": before})


@dataclass
class FileSweep:
    """Old files in the signals directory's processed/ and rejected/ folders."""

    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    #: the files that could not be removed, each with why
    failed: list[tuple[Path, str]] = field(default_factory=list)

    def remove(self) -> int:
        """Remove the files found (a link itself, never what it points to); how many
        went. A file already gone counts as removed."""
        removed = 0
        for path in self.files:
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                self.failed.append((path, exc.strerror or str(exc)))
                continue
            removed += 1
        return removed


def old_signal_files(directory: Path, older_than: float) -> FileSweep:
    """The files in `directory`'s processed/ and rejected/ (signals that were read, and
    those refused with their .error.json) filed more than `older_than` seconds ago:
    by the later of their modification and change times (a rename into the folder
    changes the latter). A folder that is a link, or not the user's own, is left
    alone; so is anything in it that is a directory."""
    before = time.time() - older_than
    sweep = FileSweep()
    for name in (PROCESSED, REJECTED):
        folder = directory / name
        try:
            info = folder.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        sweep.folders.append(folder)
        with os.scandir(folder) as entries:
            for entry in entries:
                try:
                    found = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISDIR(found.st_mode) and max(
                        found.st_mtime, found.st_ctime) < before:
                    sweep.files.append(Path(entry.path))
    sweep.files.sort()
    return sweep
