"""The agent daemon: home lock, socket server, recovery at start, clock, shutdown.

The socket answers as soon as the agent holds the home's lock; the start-up work (open
the store, recover interrupted instances, apply the signal files that wait) goes on
behind it. `status` answers at once, with the start-up's progress; the other operations
wait for the part of the start-up they need (see `Agent.gate`). Each request is handled
by its own module in agent/handlers/.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import Any

from procctl.agent import VERSION, expression_limits, protocol
from procctl.agent.config import load_config
from procctl.agent.durations import parse_duration
from procctl.agent.errors import (
    AgentError,
    DefinitionError,
    InstanceNotFound,
    Refused,
    UsageError,
)
from procctl.agent.follower import Follower, Send
from procctl.agent.handlers import dispatch
from procctl.agent.health import DONE, RECOVERING, SIGNAL_FILES, Health
from procctl.agent.instances import InstanceManager
from procctl.agent.intake import SignalDesk
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.lock import HomeLock
from procctl.agent.logs import setup_logging
from procctl.agent.membership import Membership
from procctl.agent.messages import (
    Failure,
    Reply,
    Result,
    StopRequest,
    parse_request,
    reply_message,
)
from procctl.agent.paths import HomePaths
from procctl.agent.scheduler import Scheduler
from procctl.agent.sdnotify import notify
from procctl.agent.store_location import describe, store_url
from procctl.agent.store_worker import StoreWorker
from procctl.store import StoreError
from procctl.store.clock import utc_now
from procctl.store.errors import Fenced, NotFound

log = logging.getLogger("procctl.agent")



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
        self.follower = Follower(self.manager, self.worker)
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

    async def gate(self, gate: asyncio.Event) -> None:
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

            async def send(reply: Reply) -> None:
                writer.write(protocol.encode(reply_message(reply)))
                await writer.drain()

            try:
                message = protocol.decode(line)
            except protocol.VersionMismatch as mismatch:
                # Answered in the sender's own version, so that it can print it. A stop
                # is obeyed whatever the version: how an upgrade replaces the agent.
                stop = json.loads(line).get("op") == StopRequest.op
                reply = (Result({"pid": os.getpid(), "stopping": True}) if stop
                         else self._version_failure(mismatch.version))
                writer.write(protocol.encode(reply_message(reply), version=mismatch.version))
                await writer.drain()
                if stop:
                    self.stopping.set()
                return
            except ValueError as exc:
                await send(Failure("usage", f"not a request of the protocol: {exc}"))
                return
            await self._dispatch(message, send)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if task is not None:
                self.connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _version_failure(self, version: object) -> Failure:
        return Failure(
            "version",
            f"this procctl speaks protocol {version!r} and the agent for home "
            f"{self.paths.home} speaks protocol {protocol.PROTOCOL_VERSION} (procctl "
            f"{VERSION}): they are different procctl versions",
            hint="stop the agent with the procctl that started it (procctl agent stop), "
                 "then start it again with the one installed now")

    async def _dispatch(self, message: dict[str, Any], send: Send) -> None:
        """The request's handler (agent/handlers/), its errors as one Failure."""
        try:
            await dispatch(self, parse_request(message), send)
        except DefinitionError as exc:
            await send(Failure("definition", exc.message, exc.hint))
        except (InstanceNotFound, NotFound) as exc:
            await send(Failure("not_found", exc.message, exc.hint))
        except (AgentError, StoreError) as exc:
            kind = ("usage" if isinstance(exc, UsageError)
                    else "refused" if isinstance(exc, Refused)
                    else "store" if isinstance(exc, StoreError) else "agent")
            await send(Failure(kind, exc.message, exc.hint))
        except (ValueError, json.JSONDecodeError) as exc:
            await send(Failure("usage", str(exc)))

    # -- what the handlers read (agent/handlers/) ------------------------------------

    def store_commits(self) -> int | None:
        """Write transactions the store has committed since the agent started."""
        try:
            return self.worker.store.commits
        except RuntimeError:  # not open yet
            return None

    def store_location(self) -> str:
        try:
            return self.worker.store.location
        except RuntimeError:  # not open yet
            return describe(self.paths, self.settings)


def run_agent(paths: HomePaths, *, foreground: bool = True,
              ready: Callable[[], None] | None = None) -> None:
    """Run an agent for `paths.home` in this process until it is stopped."""
    os.umask(0o077)
    paths.ensure()
    agent = Agent(paths)
    setup_logging(paths.log, str(agent.settings["log_level"]), to_stderr=foreground)
    asyncio.run(agent.serve(ready))
