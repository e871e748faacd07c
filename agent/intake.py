"""The signal desk: every signal (file, `procctl resume`, `signal` step) comes through here.

Files are read and checked (agent.signals), recorded and applied in one store
transaction, then moved to processed/ or rejected/. An applied signal resumes its
instance; whoever waits on a signal_id is told what became of it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procctl.agent import signals, values
from procctl.agent.durations import parse_duration
from procctl.agent.faults import fault
from procctl.agent.instances import InstanceManager, apply_set_json
from procctl.agent.store_worker import StoreWorker
from procctl.agent.watcher import SignalWatcher
from procctl.store.records import Delivery, SignalRecord

log = logging.getLogger("procctl.signals")


def edit_variables(set_values: dict[str, Any]) -> Callable[[str], str]:
    """A snapshot edit for `--set`: replace stored variables before the resume."""
    set_json = json.dumps(set_values)
    return lambda text: apply_set_json(text, set_json)


class SignalDesk:
    def __init__(self, manager: InstanceManager, worker: StoreWorker, directory: Path,
                 settings: dict[str, Any]) -> None:
        self.manager = manager
        self.worker = worker
        self.directory = directory
        self.max_bytes = int(settings["max_signal_bytes"])
        self.hold_seconds = parse_duration(settings["signal_buffer"])
        self.queue: asyncio.Queue[Path] = asyncio.Queue()
        self.watcher = SignalWatcher(directory, self.queue)
        self.waiters: dict[str, list[asyncio.Future[SignalRecord]]] = {}
        #: signal_ids being delivered: recorded in the store, their resume not launched yet
        self.in_flight: set[str] = set()
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
            await self.process_file(path)
        if progress:
            progress(len(found), len(found))
        return len(found)

    async def run(self) -> None:
        """Process queued files one by one, for the agent's lifetime."""
        while True:
            path = await self.queue.get()
            try:
                await self.process_file(path)
            except asyncio.CancelledError:
                raise
            except Exception:  # never let one file stop the intake
                log.exception("signal file could not be processed", extra={"file": str(path)})

    async def process_file(self, path: Path) -> None:
        if not path.exists() and not path.is_symlink():
            return  # already handled (an event and a scan both reported it)
        source = f"file:{path.name}"
        try:
            signal = await asyncio.to_thread(signals.read_signal_file, path, self.max_bytes)
        except signals.SignalRejected as exc:
            await self.worker.call(self.worker.store.record_rejected_signal, source, exc.reason)
            await asyncio.to_thread(signals.settle, path, exc.reason)
            log.warning("signal file rejected", extra={"file": path.name, "reason": exc.reason})
            return
        if signal.sender == "procctl resume":
            source = f"cli:{path.name}"
        delivery = await self.deliver(
            correlation_id=signal.correlation_id, payload=signal.payload,
            signal_id=signal.signal_id or signal.file_key, source=source,
            set_values=signal.set_values)
        fault("after_signal_commit")
        repeat_of_this_file = delivery.outcome == "duplicate" and (
            signal.signal_id is None or await self._read_before(signal, source))
        if delivery.outcome in ("rejected", "duplicate") and not repeat_of_this_file:
            await asyncio.to_thread(signals.settle, path, delivery.reason)
        else:
            await asyncio.to_thread(signals.settle, path, None)

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
        store = self.worker.store
        try:
            payload_json = values.dumps(payload)
        except TypeError:
            payload_json = values.dumps(values.to_plain(payload))
        delivery = await self.worker.call(
            store.deliver_signal, correlation_id=correlation_id, source=source,
            signal_id=signal_id, payload_json=payload_json,
            set_json=json.dumps(set_values) if set_values else None,
            hold_seconds=self.hold_seconds,
            edit_snapshot=edit_variables(set_values) if set_values else None)
        log.info("signal %s", delivery.outcome, extra={
            "correlation_id": correlation_id, "source": source, "reason": delivery.reason,
            "instance": delivery.instance_id})
        if delivery.outcome == "applied" and delivery.instance_id:
            data: dict[str, Any] = {"source": source, "signal_id": signal_id,
                                    "payload": values.to_plain(payload)}
            if set_values:
                data["set"] = sorted(set_values)
            await self.worker.call(store.add_event, delivery.instance_id, "signal_applied",
                                   json.dumps(data))
            await self.manager.resume_delivery(delivery)
        self._tell_waiters(delivery.signal)
        return delivery

    def _tell_waiters(self, record: SignalRecord) -> None:
        if record.signal_id is None:
            return
        for future in self.waiters.pop(record.signal_id, []):
            if not future.done():
                future.set_result(record)

    async def wait_for(self, signal_id: str, timeout: float | None) -> SignalRecord | None:
        """What became of a sender's signal_id (None on timeout)."""
        future: asyncio.Future[SignalRecord] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(signal_id, []).append(future)
        known = await self.worker.call(self.worker.store.signal_outcome, signal_id)
        # A signal still being delivered is already in the store as applied, but its
        # instance is not launched yet: following it now would report it `running`.
        if known is not None and signal_id not in self.in_flight:
            waiting = self.waiters.get(signal_id, [])
            if future in waiting:
                waiting.remove(future)
            return known
        try:
            return await asyncio.wait_for(future, timeout)
        except TimeoutError:
            return None
