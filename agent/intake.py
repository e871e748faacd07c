"""The signal desk: every signal (file, `procctl resume`, `signal` step) comes through here.

Files are read and checked (agent.signals), recorded and applied in one store
transaction, then moved to processed/ or rejected/. An applied signal resumes its
instance; whoever waits on a signal_id is told what became of it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from procctl.agent import signals
from procctl.agent.durations import parse_duration
from procctl.agent.faults import fault
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.store_worker import StoreWorker
from procctl.agent.watcher import SignalWatcher
from procctl.store.clock import utc_now
from procctl.store.records import Delivery, SignalRecord

log = logging.getLogger("procctl.signals")

#: signal files up to this size are read on the event loop, larger ones on a thread
INLINE_READ_BYTES = 64 * 1024


@dataclass
class FollowSlot:
    """Someone who will follow the instance a signal resumes (`procctl resume`): the
    desk subscribes `queue` to it before it runs on, so no event of the run is missed."""

    signal_id: str
    instance_id: str | None = None
    queue: asyncio.Queue[dict[str, Any]] | None = None

    def take(self, instance_id: str) -> asyncio.Queue[dict[str, Any]] | None:
        """The queue subscribed to `instance_id` (None when it was not: a held signal
        delivered later by a pause, say); the taker unsubscribes it."""
        queue, self.queue = self.queue, None
        return queue if self.instance_id == instance_id else None


class SignalDesk:
    def __init__(self, lifecycle: Lifecycle, worker: StoreWorker, directory: Path,
                 settings: dict[str, Any]) -> None:
        self.lifecycle = lifecycle
        manager = lifecycle.manager
        self.worker = worker
        self.directory = directory
        self.max_bytes = int(settings["max_signal_bytes"])
        self.hold_seconds = parse_duration(settings["signal_buffer"])
        self.queue: asyncio.Queue[Path] = asyncio.Queue()
        self.watcher = SignalWatcher(directory, self.queue)
        self.waiters: dict[str, list[asyncio.Future[SignalRecord]]] = {}
        #: those who wait for a file by its name (procctl resume): told when it is rejected
        self.file_waiters: dict[str, list[asyncio.Future[SignalRecord]]] = {}
        #: signal_ids being delivered: recorded in the store, their resume not launched yet
        self.in_flight: set[str] = set()
        #: files that could not be moved out of the directory: name -> (inode, mtime)
        self.unfiled: dict[str, tuple[int, int]] = {}
        #: who will follow the instance a signal_id resumes
        self.followers: dict[str, list[FollowSlot]] = {}
        manager.deliver = self.deliver

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.watcher.start()

    def stop(self) -> None:
        self.watcher.stop()

    def scan(self) -> int:
        """Queue every signal file in the directory (at start and at intervals)."""
        found = signals.scan(self.directory)
        for path in found:
            self.queue.put_nowait(path)
        return len(found)

    async def process_waiting(self, progress: Callable[[int, int], None] | None = None) -> int:
        """Process every file already in the directory, now (at start); `progress` is
        told (files done, files found) before the first file and after each one."""
        found = signals.scan(self.directory)
        for done, path in enumerate(found):
            if progress:
                progress(done, len(found))
            await self._process_guarded(path)
        if progress:
            progress(len(found), len(found))
        return len(found)

    async def run(self) -> None:
        """Process queued files one by one, for the agent's lifetime."""
        while True:
            await self._process_guarded(await self.queue.get())

    async def _process_guarded(self, path: Path) -> None:
        """One file; nothing it holds may stop the intake or the agent's start."""
        try:
            await self.process_file(path)
        except asyncio.CancelledError:
            raise
        except Exception:  # process_file files its own failures: this is a last guard
            log.exception("signal file could not be processed", extra={"file": str(path)})

    async def process_file(self, path: Path) -> None:
        """Read, check, deliver and file one signal file. Whatever fails on the way,
        the file ends in processed/ or in rejected/ with the reason; only a failing
        store leaves it in the directory, for the next scan."""
        try:
            info = path.lstat()
        except FileNotFoundError:
            return  # already handled (an event and a scan both reported it)
        if self.unfiled.get(path.name) == (info.st_ino, info.st_mtime_ns):
            return  # it could not be moved before, and has not changed since
        name = signals.printable_name(path.name)
        source = f"file:{name}"
        try:
            if stat.S_ISREG(info.st_mode) and info.st_size <= INLINE_READ_BYTES:
                # A small regular file is read in place: a hand-off to a thread and back
                # cost more than the read (it is opened non-blocking and checked again).
                signal = signals.read_signal_file(path, self.max_bytes)
            else:
                signal = await asyncio.to_thread(signals.read_signal_file, path,
                                                 self.max_bytes)
        except signals.SignalRejected as exc:
            await self._reject(path, source, exc.reason)
            return
        except Exception as exc:  # a case the checks do not know: still filed, with why
            log.exception("signal file could not be read", extra={"file": name})
            await self._reject(path, source, f"could not be read: {type(exc).__name__}: {exc}")
            return
        if signal.sender == "procctl resume":
            source = f"cli:{name}"
        signal_id = signal.signal_id or signal.file_key
        started = utc_now()
        try:
            delivery = await self.deliver(
                correlation_id=signal.correlation_id, payload=signal.payload,
                signal_id=signal_id, source=source, set_values=signal.set_values)
        except sqlite3.OperationalError as exc:  # the store failed, not the file
            log.error("signal file left for the next scan: the store failed",
                      extra={"file": name, "error": str(exc)})
            return
        except Exception as exc:
            log.exception("signal could not be delivered", extra={"file": name})
            if await self._recorded(signal_id, source, started):
                await self._file(path, None)
            else:
                await self._reject(path, source, f"could not be delivered: "
                                   f"{type(exc).__name__}: {exc}",
                                   correlation_id=signal.correlation_id,
                                   signal_id=signal.signal_id)
            return
        fault("after_signal_commit")
        repeat_of_this_file = delivery.outcome == "duplicate" and (
            signal.signal_id is None or await self._read_before(signal, source))
        if delivery.outcome in ("rejected", "duplicate") and not repeat_of_this_file:
            await self._file(path, delivery.reason)
        else:
            await self._file(path, None)

    async def _reject(self, path: Path, source: str, reason: str, *,
                      correlation_id: str | None = None, signal_id: str | None = None) -> None:
        """Record a file that is not a signal (or could not be delivered), then file it
        in rejected/; whoever waits for this file is told."""
        try:
            record = await self.worker.call(self.worker.store.record_rejected_signal, source,
                                            reason, correlation_id=correlation_id,
                                            signal_id=signal_id)
        except sqlite3.OperationalError as exc:
            log.error("signal file left for the next scan: the store failed",
                      extra={"file": source, "error": str(exc)})
            return
        log.warning("signal file rejected", extra={"file": source, "reason": reason})
        await self._file(path, reason)
        for future in self.file_waiters.pop(path.name, []):
            if not future.done():
                future.set_result(record)

    async def _file(self, path: Path, reason: str | None) -> None:
        """Move the file to processed/ (reason None) or rejected/. When even that fails
        (a read-only or full disk), it is logged once and left alone until it changes."""
        try:
            await asyncio.to_thread(signals.settle, path, reason)
        except OSError as exc:
            try:
                info = path.lstat()
            except OSError:
                return
            self.unfiled[path.name] = (info.st_ino, info.st_mtime_ns)
            log.error("signal file could not be moved out of the signals directory",
                      extra={"file": signals.printable_name(path.name), "error": str(exc)})

    async def _recorded(self, signal_id: str, source: str, since: str) -> bool:
        """Did this very delivery reach the store before it failed?"""
        try:
            known = await self.worker.call(self.worker.store.signal_outcome, signal_id)
        except sqlite3.Error:
            return False
        return (known is not None and known.source == source and known.received_at >= since
                and known.status in ("applied", "pending"))

    async def _read_before(self, signal: signals.SignalFile, source: str) -> bool:
        """Is this the very file that took its signal_id, read again because the agent
        stopped before moving it? (Same name, and written before it was received: a
        later file of that name can only have been written after the first was moved.)
        Then it goes to processed/, not to rejected/ as a duplicate."""
        assert signal.signal_id is not None
        first = await self.worker.call(self.worker.store.first_receipt, signal.signal_id)
        return (first is not None and first.source == source
                and signal.modified_at <= first.received_at)

    async def deliver(self, *, correlation_id: str, payload: Any, signal_id: str | None,
                      source: str, set_values: dict[str, Any] | None = None) -> Delivery:
        """Record and apply one signal; resume its instance when it applies."""
        if signal_id is not None:
            self.in_flight.add(signal_id)
        try:
            return await self._deliver(correlation_id=correlation_id, payload=payload,
                                       signal_id=signal_id, source=source,
                                       set_values=set_values)
        finally:
            if signal_id is not None:
                self.in_flight.discard(signal_id)
                if self.waiters.get(signal_id):  # the delivery failed half way
                    known = await self.worker.call(self.worker.store.signal_outcome,
                                                   signal_id)
                    if known is not None:
                        self._tell_waiters(known)

    async def _deliver(self, *, correlation_id: str, payload: Any, signal_id: str | None,
                       source: str, set_values: dict[str, Any] | None) -> Delivery:
        follow = None
        if signal_id is not None and signal_id in self.followers:
            def follow(instance_id: str) -> None:
                self._subscribe_followers(signal_id, instance_id)
        delivery = await self.lifecycle.deliver(
            correlation_id=correlation_id, payload=payload, signal_id=signal_id,
            source=source, set_values=set_values, hold_seconds=self.hold_seconds,
            before_launch=follow)
        if delivery.outcome == "applied":
            # The resumed instance runs first, up to its first wait: the log line, the
            # waiters and the signal file's move to processed/ (on a thread, which would
            # take the GIL from it) come after. The signal is recorded by then: a crash
            # before its file is moved reads the file again as the same signal.
            await asyncio.sleep(0)
        log.info("signal %s", delivery.outcome, extra={
            "correlation_id": correlation_id, "source": source, "reason": delivery.reason,
            "instance": delivery.instance_id})
        self._tell_waiters(delivery.signal)
        return delivery

    def want_follow(self, signal_id: str) -> FollowSlot:
        """Register to follow what `signal_id` resumes, before waiting for it."""
        slot = FollowSlot(signal_id)
        self.followers.setdefault(signal_id, []).append(slot)
        return slot

    def drop_follow(self, slot: FollowSlot) -> None:
        """Done with `slot`: a queue it still holds (not taken) is unsubscribed."""
        slots = self.followers.get(slot.signal_id, [])
        if slot in slots:
            slots.remove(slot)
        if not slots:
            self.followers.pop(slot.signal_id, None)
        if slot.queue is not None and slot.instance_id is not None:
            self.lifecycle.manager.unsubscribe(slot.instance_id, slot.queue)
            slot.queue = None

    def _subscribe_followers(self, signal_id: str, instance_id: str) -> None:
        for slot in self.followers.get(signal_id, []):
            if slot.queue is None:
                slot.instance_id = instance_id
                slot.queue = self.lifecycle.manager.subscribe(instance_id)

    def _tell_waiters(self, record: SignalRecord) -> None:
        if record.signal_id is None:
            return
        for future in self.waiters.pop(record.signal_id, []):
            if not future.done():
                future.set_result(record)

    async def wait_for(self, signal_id: str, timeout: float | None, *,
                       file: str | None = None, since: str | None = None
                       ) -> SignalRecord | None:
        """What became of a sender's signal_id (None on timeout). With `file` (the name
        of the sender's signal file) and `since` (when it was written), a rejection of
        that file before its signal_id could be read counts too."""
        future: asyncio.Future[SignalRecord] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(signal_id, []).append(future)
        if file is not None:
            self.file_waiters.setdefault(file, []).append(future)
        try:
            store = self.worker.store
            known = await self.worker.call(store.signal_outcome, signal_id)
            if known is not None and since is not None and known.received_at < since:
                known = None  # an earlier receipt of this signal_id: this one is a repeat
            if known is None and file is not None and since is not None:
                known = await self.worker.call(store.file_rejection,
                                               signals.printable_name(file), since)
            # A signal still being delivered is already in the store as applied, but its
            # instance is not launched yet: following it now would report it `running`.
            if known is not None and signal_id not in self.in_flight:
                return known
            try:
                return await asyncio.wait_for(future, timeout)
            except TimeoutError:
                return None
        finally:
            self._forget(future, self.waiters, signal_id)
            if file is not None:
                self._forget(future, self.file_waiters, file)

    @staticmethod
    def _forget(future: asyncio.Future[SignalRecord],
                table: dict[str, list[asyncio.Future[SignalRecord]]], key: str) -> None:
        waiting = table.get(key)
        if waiting is not None and future in waiting:
            waiting.remove(future)
            if not waiting:
                del table[key]
