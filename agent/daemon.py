"""The agent daemon: home lock, socket server, recovery at start, clock, shutdown.

The socket answers as soon as the agent holds the home's lock; the start-up work (open
the store, recover interrupted instances, apply the signal files that wait) goes on
behind it. `status` answers at once, with the start-up's progress; the other operations
wait for the part of the start-up they need (see `Agent._gate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from procctl.agent import VERSION, expression_limits, protocol, values
from procctl.agent.config import load_config
from procctl.agent.definition import parse_definition, resolve_params
from procctl.agent.durations import parse_duration
from procctl.agent.errors import (
    AgentError,
    DefinitionError,
    InstanceNotFound,
    Refused,
    UsageError,
)
from procctl.agent.health import DONE, RECOVERING, SIGNAL_FILES, Health
from procctl.agent.instances import InstanceManager
from procctl.agent.intake import SignalDesk
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.lock import HomeLock
from procctl.agent.logs import setup_logging
from procctl.agent.membership import Membership
from procctl.agent.paths import HomePaths
from procctl.agent.scheduler import Scheduler
from procctl.agent.sdnotify import notify
from procctl.agent.store_location import describe, store_url
from procctl.agent.store_worker import StoreWorker
from procctl.agent.summary import instance_summary, signal_summary, waiting_for
from procctl.store import StoreError
from procctl.store.clock import utc_now
from procctl.store.errors import Fenced, NotFound

log = logging.getLogger("procctl.agent")

Send = Callable[[dict[str, Any]], Awaitable[None]]

#: seconds between two reads of the history of an instance another agent runs
FOLLOW_POLL = 0.2


class Agent:
    def __init__(self, paths: HomePaths) -> None:
        self.paths = paths
        self.settings = load_config(paths.config)
        expression_limits.apply_settings(self.settings)
        self.health = Health()
        self.worker = StoreWorker(paths.db, self.health,
                                  url=store_url(paths, self.settings))
        self.worker.on_fenced = self._on_fenced
        self.membership = Membership(paths, self.settings, self.worker, self._lost_lease)
        #: set when the store refused this agent's writes (its lease ran out)
        self.fenced = False
        self.lease_task: asyncio.Task[None] | None = None
        self.lock = HomeLock(paths.lock)
        self.manager = InstanceManager(self.worker)
        self.manager.pool = str(self.settings["pool"])
        self.lifecycle = Lifecycle(self.manager, self.worker)
        self.desk = SignalDesk(self.lifecycle, self.worker,
                               paths.signals_dir(str(self.settings["signals_dir"])),
                               self.settings)
        self.scheduler = Scheduler(self.lifecycle, self.desk, self.worker, self.settings,
                                   self.health, self.membership)
        self.connections: set[asyncio.Task[Any]] = set()
        self.background: list[asyncio.Task[None]] = []
        self.stopping = asyncio.Event()
        self.started_at = utc_now()
        self.started_monotonic = time.monotonic()
        # Start-up gates, in order: the store is open and the instances to recover are
        # known (new instances may start); they are recovered (everything else may run).
        self.listed = asyncio.Event()
        self.recovered = asyncio.Event()
        #: what ended the start-up, re-raised once the agent has stopped
        self.failure: BaseException | None = None

    # -- life cycle ---------------------------------------------------------------

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM, SIGINT or a `stop` request (or a start-up that fails)."""
        self.paths.ensure()
        self._loop = asyncio.get_running_loop()
        self.lock.acquire()
        try:
            self.paths.socket.unlink(missing_ok=True)
            server = await asyncio.start_unix_server(
                self._on_connection, sock=protocol.bind(self.paths.socket),
                limit=protocol.MAX_LINE,
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stopping.set)
            log.info("agent starting", extra={"pid": os.getpid(), "home": str(self.paths.home)})
            start_up = asyncio.create_task(self._start_up(ready))
            await self.stopping.wait()
            self.health.stopping = True
            self.worker.stop_waiting_for_store()
            notify("STOPPING=1")
            log.info("agent stopping", extra={"running": len(self.manager.tasks)})
            server.close()
            start_up.cancel()
            await asyncio.gather(start_up, return_exceptions=True)
            self.desk.stop()
            for task in self.background:
                task.cancel()
            await asyncio.gather(*self.background, return_exceptions=True)
            await self._drain_instances()
            if self.lease_task is not None:
                self.lease_task.cancel()
                await asyncio.gather(self.lease_task, return_exceptions=True)
                if not self.fenced:
                    await self.membership.leave()
            for task in list(self.connections):
                task.cancel()
            await asyncio.gather(*self.connections, return_exceptions=True)
            await server.wait_closed()
        finally:
            self.paths.socket.unlink(missing_ok=True)
            await self.worker.close()
            self.lock.release()
            log.info("agent stopped")
        if self.failure is not None:
            raise self.failure

    async def _start_up(self, ready: Callable[[], None] | None) -> None:
        """Open the store, recover, apply the waiting signal files, then start the
        clock and the intake and report ready. A failure stops the agent (the error is
        what `agent run` exits with)."""
        try:
            await self.worker.open()  # waits while the disk is full
            await self.membership.join()
            self.lease_task = asyncio.create_task(self.membership.run())
            self._enter(RECOVERING)
            await self.recover()
            self.recovered.set()
            self._enter(SIGNAL_FILES)
            self.desk.start()
            # Signals that came while no agent ran are applied before it reports ready.
            await self.desk.process_waiting(self.health.signal_file_progress)
            await self.manager.wake_parents()
            self.background = [asyncio.create_task(self.desk.run()),
                               asyncio.create_task(self.scheduler.run())]
            self._enter(DONE)
            log.info("agent ready", extra={"pid": os.getpid(), "home": str(self.paths.home)})
            notify("READY=1")
            if ready:
                ready()
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # kept, and raised again by serve once stopped
            log.error("agent start-up failed: %s", exc, extra={"phase": self.health.phase})
            self.failure = exc
            self.stopping.set()

    def _on_fenced(self, error: Fenced) -> None:
        """On the store thread: the store refused a write of this agent's."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: it stopped already
            self._loop.call_soon_threadsafe(self._lost_lease, error)

    def _lost_lease(self, error: StoreError) -> None:
        """Other agents may own this agent's instances now: stop at once, writing
        nothing more (agent run exits with the store's error)."""
        if self.fenced:
            return
        self.fenced = True
        log.error("lease lost: %s", error.message, extra={
            "agent_id": self.membership.agent_id, "running": len(self.manager.tasks)})
        self.failure = error
        self.stopping.set()

    def _enter(self, phase: str) -> None:
        self.health.enter(phase)
        notify(f"STATUS=start-up: {phase.replace('_', ' ')}")

    async def _gate(self, gate: asyncio.Event) -> None:
        """Wait until the start-up has passed `gate`; refused if the agent stops first."""
        if not gate.is_set():
            waits = [asyncio.ensure_future(gate.wait()),
                     asyncio.ensure_future(self.stopping.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()
        if not gate.is_set():
            raise Refused("the agent stopped before it finished starting",
                          hint=f"see its log: {self.paths.log}")

    async def recover(self) -> None:
        """Instances the last agent left running: from their checkpoint through the
        recover block; with none, as their definition's `on_crash` says."""
        # This agent's own from its last run, and any whose agent is gone; on SQLite
        # (one agent per store) every running instance.
        interrupted = await self.membership.claim(at_start=True)
        # Known now: an instance created from here on is a new one, not one to recover.
        self.listed.set()
        for done, instance_id in enumerate(interrupted):
            self.health.recovered(done, len(interrupted))
            await self.lifecycle.recover(instance_id)
        self.health.recovered(len(interrupted), len(interrupted))

    async def _drain_instances(self) -> None:
        running = list(self.manager.tasks.values())
        if not running:
            return
        # A fenced agent's instances may run elsewhere now: no grace, no more writes.
        grace = 0.0 if self.fenced else parse_duration(self.settings["shutdown_grace"])
        _, pending = await asyncio.wait(running, timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # -- connections --------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connections.add(task)
        try:
            line = await reader.readline()
            if not line:
                return

            async def send(message: dict[str, Any]) -> None:
                writer.write(protocol.encode(message))
                await writer.drain()

            await self._dispatch(line, send)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, send: Send) -> None:
        try:
            request = protocol.decode(line)
            op = str(request.get("op", ""))
            handler = getattr(self, f"op_{op}", None)
            if handler is None:
                raise UsageError(f"the agent has no operation {op!r}")
            await handler(request, send)
        except (ValueError, json.JSONDecodeError) as exc:
            await send({"type": "error", "error": {"kind": "usage", "message": str(exc)}})
        except DefinitionError as exc:
            await send({"type": "error", "error": {
                "kind": "definition", "message": exc.message, "hint": exc.hint}})
        except (InstanceNotFound, NotFound) as exc:
            await send({"type": "error", "error": {
                "kind": "not_found", "message": exc.message, "hint": exc.hint}})
        except (AgentError, StoreError) as exc:
            kind = ("usage" if isinstance(exc, UsageError)
                    else "refused" if isinstance(exc, Refused)
                    else "store" if isinstance(exc, StoreError) else "agent")
            await send({"type": "error", "error": {
                "kind": kind, "message": exc.message, "hint": exc.hint}})

    # -- operations (one handler per request, named like the command) ---------------

    async def op_status(self, request: dict[str, Any], send: Send) -> None:
        await send({"type": "result", "data": {
            "pid": os.getpid(),
            "home": str(self.paths.home),
            "version": VERSION,
            "protocol": protocol.PROTOCOL_VERSION,
            "started_at": self.started_at,
            "uptime_seconds": round(time.monotonic() - self.started_monotonic, 3),
            "instances_running": len(self.manager.tasks),
            "signals_dir": str(self.desk.directory),
            "store_commits": self._store_commits(),
            "store": self._store_location(),
            **self.membership.to_json(),
            **self.health.to_json(),
        }})

    def _store_commits(self) -> int | None:
        """Write transactions the store has committed since the agent started."""
        try:
            return self.worker.store.commits
        except RuntimeError:  # not open yet
            return None

    def _store_location(self) -> str:
        try:
            return self.worker.store.location
        except RuntimeError:  # not open yet
            return describe(self.paths, self.settings)

    async def op_stop(self, request: dict[str, Any], send: Send) -> None:
        await send({"type": "result", "data": {"pid": os.getpid(), "stopping": True}})
        self.stopping.set()

    async def op_run(self, request: dict[str, Any], send: Send) -> None:
        if self.stopping.is_set():
            raise Refused("the agent is stopping and takes no new instances",
                             hint="run the command again in a moment")
        # New instances do not wait for the start-up's signal files, nor for the
        # recovery: a correlation ID that a recovered instance holds is still refused
        # (checkpoints.correlation_id is unique in the store).
        await self._gate(self.listed)
        file = request.get("file")
        definition = parse_definition(str(request["source"]), file)
        params = resolve_params(definition.params, from_file=values.decode(
            request.get("params") or {}), process_name=definition.name)
        base_dir = request.get("base_dir") or (str(Path(file).parent) if file else os.getcwd())
        trigger = {"id": "cli", "kind": "cli", "file": file, "base_dir": base_dir}
        wait = bool(request.get("wait"))
        instance_id, queue = await self.manager.start(definition, params, trigger,
                                                      subscribe=wait)
        await send({"type": "event", "event": {"kind": "instance_created",
                                               "instance_id": instance_id}})
        if queue is None:
            await send({"type": "result", "data": {"instance_id": instance_id,
                                                   "status": "running"}})
            return
        await self._follow(instance_id, send, queue, until_intermediate=True)

    async def op_watch(self, request: dict[str, Any], send: Send) -> None:
        """Follow an instance until it completes, fails or pauses."""
        await self._gate(self.recovered)
        await self._follow(str(request["instance_id"]), send)

    async def _follow(self, instance_id: str, send: Send,
                      queue: asyncio.Queue[dict[str, Any]] | None = None,
                      until_intermediate: bool = False) -> None:
        """Send an instance's events until it settles; with `until_intermediate`, stop
        at its first intermediate_return too (the summary then has `intermediate`)."""
        store = self.worker.store
        record = await self.worker.call(store.get_instance, instance_id)
        if queue is None and store.shared and record.status == "running" \
                and record.id not in self.manager.tasks:
            # Another agent runs it: its history, as that agent commits it.
            await self._follow_elsewhere(record.id, send, until_intermediate)
            return
        if queue is None:
            queue = self.manager.subscribe(record.id)
            record = await self.worker.call(store.get_instance, record.id)
        try:
            # A queue subscribed before the instance ran on (resume, retry) holds its
            # events from the start: they are sent even if it has settled since.
            while not queue.empty() or (record.status == "running"
                                        and record.id in self.manager.tasks):
                event = await queue.get()
                if event["kind"] == "instance_settled":
                    record = await self.worker.call(store.get_instance, record.id)
                    if record.status != "running" or record.id not in self.manager.tasks:
                        break
                    continue
                await send({"type": "event", "event": event})
                if until_intermediate and event["kind"] == "intermediate_return":
                    record = await self.worker.call(store.get_instance, record.id)
                    summary = instance_summary(record, None)
                    summary["intermediate"] = event["data"]["value"]
                    await send({"type": "result", "data": summary})
                    return
            if store.shared and record.status == "running" \
                    and record.id not in self.manager.tasks:
                # Handed over to its pool, or taken over: it goes on elsewhere.
                await self._follow_elsewhere(record.id, send, until_intermediate)
                return
            checkpoint = await self.worker.call(store.find_checkpoint, record.id)
            summary = instance_summary(record, checkpoint)
            child = await self.worker.call(waiting_for, record, store.get_instance)
            if child is not None:
                summary["waiting_for"] = child
            await send({"type": "result", "data": summary})
        finally:
            self.manager.unsubscribe(record.id, queue)

    async def _follow_elsewhere(self, instance_id: str, send: Send,
                                until_intermediate: bool) -> None:
        """Send the events of an instance that another agent sharing the store runs, as
        that agent commits them (polled every FOLLOW_POLL seconds), until it settles;
        then its summary, as `_follow` sends it."""
        store = self.worker.store
        history = await self.worker.call(store.events, instance_id)
        after = history[-1].id if history else 0
        while True:
            record = await self.worker.call(store.get_instance, instance_id)
            for event in await self.worker.call(store.events, instance_id, after):
                after = event.id
                await send({"type": "event", "event": {
                    "kind": event.kind, "step_id": event.step_id, "step_path": event.step_path,
                    "data": json.loads(event.data_json), "at": event.at}})
                if until_intermediate and event.kind == "intermediate_return":
                    summary = instance_summary(record, None)
                    summary["intermediate"] = json.loads(event.data_json).get("value")
                    await send({"type": "result", "data": summary})
                    return
            if record.status != "running":
                break
            if record.id in self.manager.tasks:  # taken over by this agent: its stream
                await self._follow(record.id, send, None, until_intermediate)
                return
            await asyncio.sleep(FOLLOW_POLL)
        checkpoint = await self.worker.call(store.find_checkpoint, record.id)
        summary = instance_summary(record, checkpoint)
        child = await self.worker.call(waiting_for, record, store.get_instance)
        if child is not None:
            summary["waiting_for"] = child
        await send({"type": "result", "data": summary})

    async def op_await_signal(self, request: dict[str, Any], send: Send) -> None:
        """What became of a signal (by its signal_id); with follow, the instance too."""
        await self._gate(self.recovered)
        timeout = request.get("wait_seconds")
        file, since = request.get("file"), request.get("since")
        signal_id = str(request["signal_id"])
        # Following: subscribe to the instance before it runs on (the desk does it when
        # the signal applies), so that every event of the run is sent, in order.
        slot = self.desk.want_follow(signal_id) if request.get("follow") else None
        try:
            if request.get("announce"):  # the sender writes its signal file now
                await send({"type": "event", "event": {"kind": "awaiting_signal"}})
            record = await self.desk.wait_for(
                signal_id, None if timeout is None else float(timeout),
                file=None if file is None else str(file),
                since=None if since is None else str(since))
            if record is None:
                await send({"type": "result", "data": {"signal": None}})
                return
            data: dict[str, Any] = {"signal": signal_summary(record)}
            if record.status == "applied" and record.instance_id and slot is not None:
                queue = slot.take(record.instance_id)
                # What became of the signal first: the command prints its header
                # before the steps.
                await send({"type": "event", "event": {
                    "kind": "signal_outcome", "instance_id": record.instance_id,
                    "data": data["signal"]}})
                await self._follow_into(record.instance_id, data, send, queue)
                return
            await send({"type": "result", "data": data})
        finally:
            if slot is not None:
                self.desk.drop_follow(slot)

    async def _follow_into(self, instance_id: str, data: dict[str, Any], send: Send,
                           queue: asyncio.Queue[dict[str, Any]] | None = None) -> None:
        results: list[dict[str, Any]] = []

        async def collect(message: dict[str, Any]) -> None:
            if message["type"] == "result":
                results.append(message["data"])
            else:
                await send(message)

        await self._follow(instance_id, collect, queue)
        await send({"type": "result", "data": {**data, "instance": results[-1]}})

    async def op_retry(self, request: dict[str, Any], send: Send) -> None:
        """Retry a failed or held instance: from its checkpoint through the recover block
        when it holds one, else from the beginning with the same params."""
        await self._gate(self.recovered)
        record = await self.worker.call(self.worker.store.get_instance,
                                        str(request["instance_id"]))
        # Subscribed before it runs again, so that every event of the run is sent.
        queue = self.manager.subscribe(record.id)
        try:
            action = await self.lifecycle.retry(record.id)
        except BaseException:
            self.manager.unsubscribe(record.id, queue)
            raise
        await send({"type": "event", "event": {"kind": "retry", "instance_id": record.id,
                                               "data": {"action": action}}})
        await self._follow(record.id, send, queue)

    async def op_purge_expired(self, request: dict[str, Any], send: Send) -> None:
        """Apply every TTL policy due now, a batch per transaction: each batch's
        outcome is sent as a `purge_progress` event as it is done (so the CLI shows
        progress and never waits long for a line), then the totals."""
        await self._gate(self.recovered)
        dry_run = bool(request.get("dry_run"))
        done = 0
        # Closed at once if the command goes away mid-purge (the clock takes over).
        async with contextlib.aclosing(self.scheduler.purge(dry_run=dry_run)) as batches:
            async for batch in batches:
                done += len(batch)
                await send({"type": "event", "event": {"kind": "purge_progress", "data": {
                    "expired": [e.to_json() for e in batch], "done": done}}})
        await send({"type": "result", "data": {"dry_run": dry_run, "done": done}})


def run_agent(paths: HomePaths, *, foreground: bool = True,
              ready: Callable[[], None] | None = None) -> None:
    """Run an agent for `paths.home` in this process until it is stopped."""
    os.umask(0o077)
    paths.ensure()
    agent = Agent(paths)
    setup_logging(paths.log, str(agent.settings["log_level"]), to_stderr=foreground)
    asyncio.run(agent.serve(ready))
