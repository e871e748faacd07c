"""The agent daemon: home lock, socket server, instances, recovery at start, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from procctl.agent import VERSION, protocol, values
from procctl.agent.config import load_config
from procctl.agent.definition import Definition, Step, parse_definition, resolve_params
from procctl.agent.durations import parse_duration
from procctl.agent.engine.runner import Outcome, Runner
from procctl.agent.engine.state import InstanceState
from procctl.agent.errors import AgentError, DefinitionError, InstanceNotFound, UsageError
from procctl.agent.lock import HomeLock
from procctl.agent.logs import setup_logging
from procctl.agent.paths import HomePaths
from procctl.agent.store_worker import StoreWorker
from procctl.agent.summary import instance_summary
from procctl.store import StoreError
from procctl.store.errors import NotFound
from procctl.store.sqlite import TERMINAL_STATUSES, utc_now

log = logging.getLogger("procctl.agent")

Send = Callable[[dict[str, Any]], Awaitable[None]]
INTERRUPTED_ERROR = {
    "kind": "interrupted",
    "message": "the agent stopped before the instance finished, and it holds no checkpoint",
}


class Agent:
    def __init__(self, paths: HomePaths) -> None:
        self.paths = paths
        self.settings = load_config(paths.config)
        self.worker = StoreWorker(paths.db)
        self.lock = HomeLock(paths.lock)
        self.instances: dict[str, asyncio.Task[None]] = {}
        self.watchers: dict[str, set[asyncio.Queue[dict[str, Any]]]] = {}
        self.connections: set[asyncio.Task[Any]] = set()
        self.stopping = asyncio.Event()
        self.started_at = utc_now()
        self.started_monotonic = time.monotonic()

    # -- life cycle ---------------------------------------------------------------

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Run until SIGTERM, SIGINT or a `stop` request."""
        self.paths.ensure()
        self.lock.acquire()
        try:
            await self.worker.open()
            await self.recover()
            self.paths.socket.unlink(missing_ok=True)
            server = await asyncio.start_unix_server(
                self._on_connection, sock=protocol.bind(self.paths.socket),
                limit=protocol.MAX_LINE,
            )
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self.stopping.set)
            log.info("agent ready", extra={"pid": os.getpid(), "home": str(self.paths.home)})
            if ready:
                ready()
            await self.stopping.wait()
            log.info("agent stopping", extra={"running": len(self.instances)})
            server.close()
            await self._drain_instances()
            for task in list(self.connections):
                task.cancel()
            await asyncio.gather(*self.connections, return_exceptions=True)
            await server.wait_closed()
        finally:
            self.paths.socket.unlink(missing_ok=True)
            await self.worker.close()
            self.lock.release()
            log.info("agent stopped")

    async def recover(self) -> None:
        """Normalise what a previous agent left running: it cannot be continued."""
        store = self.worker.store
        for instance_id in await self.worker.call(store.instances_with_status, "running"):
            await self.worker.call(store.finish_instance, instance_id, "failed",
                                   error_json=json.dumps(INTERRUPTED_ERROR))
            await self.worker.call(store.add_event, instance_id, "instance_failed",
                                   json.dumps({"error": INTERRUPTED_ERROR}))
            log.warning("instance interrupted by the last stop", extra={"instance": instance_id})

    async def _drain_instances(self) -> None:
        running = list(self.instances.values())
        if not running:
            return
        grace = parse_duration(self.settings["shutdown_grace"])
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
            kind = "usage" if isinstance(exc, UsageError) else "agent"
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
            "instances_running": len(self.instances),
        }})

    async def op_stop(self, request: dict[str, Any], send: Send) -> None:
        await send({"type": "result", "data": {"pid": os.getpid(), "stopping": True}})
        self.stopping.set()

    async def op_run(self, request: dict[str, Any], send: Send) -> None:
        if self.stopping.is_set():
            raise AgentError("the agent is stopping and takes no new instances",
                             hint="run the command again in a moment")
        file = request.get("file")
        definition = parse_definition(str(request["source"]), file)
        params = resolve_params(definition.params, from_file=values.decode(
            request.get("params") or {}), process_name=definition.name)
        base_dir = request.get("base_dir") or (str(Path(file).parent) if file else os.getcwd())
        trigger = {"kind": "cli", "file": file, "base_dir": base_dir}
        instance_id = secrets.token_hex(6)
        store = self.worker.store
        await self.worker.call(store.put_definition, definition.sha256, definition.name,
                               definition.version, file, definition.source)
        await self.worker.call(store.create_instance, instance_id, definition.sha256,
                               definition.name, definition.version, values.dumps(params),
                               json.dumps(trigger))
        queue = self._subscribe(instance_id) if request.get("wait") else None
        task = asyncio.create_task(self._run_instance(instance_id, definition, params, trigger))
        self.instances[instance_id] = task
        task.add_done_callback(lambda _: self.instances.pop(instance_id, None))
        await send({"type": "event", "event": {"kind": "instance_created",
                                               "instance_id": instance_id}})
        if queue is None:
            await send({"type": "result", "data": {"instance_id": instance_id,
                                                   "status": "running"}})
            return
        await self._follow(instance_id, queue, send)

    async def op_watch(self, request: dict[str, Any], send: Send) -> None:
        instance_id = str(request["instance_id"])
        queue = self._subscribe(instance_id)
        record = await self.worker.call(self.worker.store.get_instance, instance_id)
        if record.status in TERMINAL_STATUSES or record.id not in self.instances:
            self._unsubscribe(record.id, queue)
            await send({"type": "result", "data": instance_summary(record)})
            return
        await self._follow(record.id, queue, send)

    async def _follow(self, instance_id: str, queue: asyncio.Queue[dict[str, Any]],
                      send: Send) -> None:
        try:
            while True:
                event = await queue.get()
                if event["kind"] == "instance_finished":
                    record = await self.worker.call(self.worker.store.get_instance, instance_id)
                    await send({"type": "result", "data": instance_summary(record)})
                    return
                await send({"type": "event", "event": event})
        finally:
            self._unsubscribe(instance_id, queue)

    def _subscribe(self, instance_id: str) -> asyncio.Queue[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.watchers.setdefault(instance_id, set()).add(queue)
        return queue

    def _unsubscribe(self, instance_id: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        watchers = self.watchers.get(instance_id)
        if watchers is not None:
            watchers.discard(queue)
            if not watchers:
                self.watchers.pop(instance_id, None)

    # -- instances ------------------------------------------------------------------

    def _publish(self, instance_id: str, event: dict[str, Any]) -> None:
        for queue in self.watchers.get(instance_id, ()):
            queue.put_nowait(event)

    async def _run_instance(self, instance_id: str, definition: Definition,
                            params: dict[str, Any], trigger: dict[str, Any]) -> None:
        store = self.worker.store

        async def emit(kind: str, step: Step | None, data: dict[str, Any]) -> None:
            plain = values.to_plain(data)
            await self.worker.call(store.add_event, instance_id, kind, json.dumps(plain),
                                   step_id=step.id if step else None,
                                   step_path=step.path if step else None)
            if kind == "log":
                log.info(str(data.get("message")), extra={"instance": instance_id,
                                                          "step": step.id if step else None})
            self._publish(instance_id, {"kind": kind, "step_id": step.id if step else None,
                                        "step_path": step.path if step else None,
                                        "data": plain, "at": utc_now()})

        process = {"instance_id": instance_id, "name": definition.name,
                   "version": definition.version, "trigger": trigger,
                   "started_at": utc_now()}
        state = InstanceState(instance_id, process, Path(str(trigger["base_dir"])),
                              variables=dict(params))
        await emit("instance_started", None, {"process": definition.name})
        try:
            outcome = await Runner(definition, state, emit).run()
        except asyncio.CancelledError:
            log.warning("instance interrupted by shutdown", extra={"instance": instance_id})
            raise
        except Exception as exc:  # a bug in the engine: fail this instance, keep the agent
            log.exception("instance crashed", extra={"instance": instance_id})
            outcome = Outcome("failed", error={
                "kind": "internal", "message": f"procctl bug: {type(exc).__name__}: {exc}"})
        await self._finish(instance_id, outcome, emit)

    async def _finish(self, instance_id: str, outcome: Outcome,
                      emit: Callable[[str, Step | None, dict[str, Any]], Awaitable[None]]) -> None:
        store = self.worker.store
        try:
            result_json = values.dumps(outcome.result)
        except TypeError:
            result_json = values.dumps(values.to_plain(outcome.result))
        error_json = json.dumps(outcome.error) if outcome.error else None
        await self.worker.call(store.finish_instance, instance_id, outcome.status,
                               result_json=result_json, error_json=error_json)
        kind = "instance_completed" if outcome.status == "completed" else "instance_failed"
        await emit(kind, None, {"error": outcome.error} if outcome.error else {})
        log.info(f"instance {outcome.status}", extra={"instance": instance_id})
        self._publish(instance_id, {"kind": "instance_finished"})


def run_agent(paths: HomePaths, *, foreground: bool = True,
              ready: Callable[[], None] | None = None) -> None:
    """Run an agent for `paths.home` in this process until it is stopped."""
    os.umask(0o077)
    paths.ensure()
    agent = Agent(paths)
    setup_logging(paths.log, str(agent.settings["log_level"]), to_stderr=foreground)
    asyncio.run(agent.serve(ready))
