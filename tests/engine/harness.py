"""An in-process engine harness: a definition run by the real engine against a real store.

What is real: the definition loader (`load_definition`, every check it makes), the
params' resolution against the declaration (as `procctl run` does it), the agent's
`InstanceManager` running the engine's `Runner` on an asyncio loop, its group commit of
checkpoints, the `Lifecycle` transitions, the `SignalDesk` a signal goes through (its
`deliver`, and `process_file` for a signal file), and the `Store` on a SQLite file in a
temporary directory (WAL, synchronous=FULL), reached through the agent's store thread
(`StoreWorker`). Summaries are the agent's own (`instance_summary`), histories are read
back from the store.

What is not: no socket and no `procctl` process (so nothing of the command line: exit
codes and printed lines are the end-to-end tests' business), no agent process, no
watcher on the signals directory, and no clock running by itself: the scheduler's calls
are made when a test asks (`resume_due(at)`: `Store.due_resumes(at)` then
`Lifecycle.resume_scheduled`, exactly what a scheduler tick does, with `at` chosen by
the test instead of the wall clock; `expire_due(at)`: the scheduler's own TTL tick,
`Scheduler.expire`, at `at`).

The API is synchronous: each call runs the harness's event loop until its work is done
(instances keep running in the background only while the loop runs, i.e. inside calls).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from procctl.agent import expression_limits, values
from procctl.agent.config import load_config
from procctl.agent.definition import Definition, load_definition, parse_assignments
from procctl.agent.definition import resolve_params as resolve
from procctl.agent.errors import DefinitionError
from procctl.agent.instances import InstanceManager
from procctl.agent.intake import SignalDesk
from procctl.agent.lifecycle_runs import Lifecycle
from procctl.agent.scheduler import Scheduler
from procctl.agent.snapshot import loads as load_snapshot
from procctl.agent.store_worker import StoreWorker
from procctl.agent.summary import instance_summary, signal_summary, waiting_for
from procctl.store.clock import to_stamp
from procctl.store.records import Status

T = TypeVar("T")
History = list[dict[str, Any]]

#: how long a harness call waits for instances before it fails the test
TIMEOUT = 30.0


@dataclass(frozen=True)
class Launch:
    """One instance to start: a definition (TOML text, or a file) and its params."""

    source: str | Path
    params: dict[str, Any] | None = None
    cli: Sequence[str] = ()  # `-p name=text` assignments, coerced as the CLI does
    name: str = "process.toml"  # the file name TOML text is written under


class Engine:
    """The engine of one agent, in this process, on a store in `directory`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.home = directory / "home"
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.settings = load_config(self.home / "config.toml")
        expression_limits.apply_settings(self.settings)
        self.signals_dir = self.home / "signals"
        self.signals_dir.mkdir(mode=0o700)
        self._loop = asyncio.Runner()
        self._build()
        self._call(self.worker.open())

    def _build(self) -> None:
        """The agent's parts, wired as Agent.__init__ (daemon.py) wires them."""
        self.worker = StoreWorker(self.home / "procctl.db")
        self.manager = InstanceManager(self.worker)
        self.lifecycle = Lifecycle(self.manager, self.worker)
        self.desk = SignalDesk(self.lifecycle, self.worker, self.signals_dir, self.settings)
        self.scheduler = Scheduler(self.lifecycle, self.desk, self.worker, self.settings)

    def restart(self) -> None:
        """Stop as the agent stops (an instance still running is cancelled and stays
        `running` in the store; paused ones are only in the store), then start again on
        the same store with new parts (no definition cached), as Agent._start_up does:
        open the store, recover the instances left running, apply the signal files
        that wait, wake the parents whose children ended."""
        self._call(self._stop())
        self._build()

        async def start_up() -> None:
            await self.worker.open()
            store = self.worker.store
            for instance_id in await self.worker.call(store.instances_with_status,
                                                      "running"):
                await self.lifecycle.recover(instance_id)
            await self.desk.process_waiting()
            await self.manager.wake_parents()
        self._call(start_up())

    # -- the loop ---------------------------------------------------------------------

    def _call(self, work: Awaitable[T], timeout: float = TIMEOUT) -> T:
        async def bounded() -> T:
            try:
                return await asyncio.wait_for(work, timeout)
            except TimeoutError:
                raise AssertionError(f"the harness waited {timeout}s in vain") from None
        return self._loop.run(bounded())

    async def _stop(self) -> None:
        tasks = list(self.manager.tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.worker.close()

    def close(self) -> None:
        """Cancel what still runs, close the store and the loop."""
        try:
            self._loop.run(self._stop())
        finally:
            self._loop.close()

    # -- definitions ------------------------------------------------------------------

    def write(self, text: str, name: str = "process.toml") -> Path:
        """Write a definition (or a plugin module, a child) beside the others."""
        path = self.directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def load(self, source: str | Path, name: str = "process.toml") -> Definition:
        """The real loader on a file: TOML text is written to `name` first."""
        path = source if isinstance(source, Path) else self.write(source, name)
        return load_definition(path)

    def validate(self, source: str | Path, name: str = "process.toml") -> dict[str, Any]:
        """The findings `procctl validate --json` reports, from the real loader: `valid`,
        the counts of `errors` and `warnings`, and `problems` (each as its JSON)."""
        try:
            problems = self.load(source, name).warnings
        except DefinitionError as exc:
            problems = exc.problems
        errors = sum(p.severity == "error" for p in problems)
        return {"valid": not errors, "errors": errors,
                "warnings": sum(p.severity == "warning" for p in problems),
                "problems": [p.to_json() for p in problems]}

    # -- running ----------------------------------------------------------------------

    def start(self, source: str | Path, params: dict[str, Any] | None = None, *,
              cli: Sequence[str] = (), name: str = "process.toml") -> str:
        """Start an instance as `procctl run` (without --wait) does; its id."""
        return self._call(self._start(Launch(source, params, cli, name)))[0]

    def run(self, source: str | Path, params: dict[str, Any] | None = None, *,
            cli: Sequence[str] = (), name: str = "process.toml",
            timeout: float = TIMEOUT) -> dict[str, Any]:
        """Start an instance and follow it as `run --wait --json` does: its summary once
        it completes, fails or pauses, or at its first intermediate_return (then with
        `intermediate`, the instance going on)."""
        return self.run_many(Launch(source, params, cli, name), timeout=timeout)[0]

    def run_many(self, *launches: Launch, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
        """Several instances at once, each followed as `run`; summaries in order."""
        async def all_of() -> list[dict[str, Any]]:
            # each one followed from its start on, as `run --wait` follows it
            followers = [asyncio.create_task(self._follow(*await self._start(launch)))
                         for launch in launches]
            return list(await asyncio.gather(*followers))
        return self._call(all_of(), timeout)

    async def _start(self, launch: Launch) -> tuple[str, asyncio.Queue[dict[str, Any]]]:
        definition = self.load(launch.source, launch.name)
        params = resolve(definition.params, from_file=launch.params,
                         from_cli=parse_assignments(list(launch.cli)),
                         process_name=definition.name)
        file = Path(str(definition.file))
        trigger = {"id": "cli", "kind": "cli", "file": str(file), "base_dir": str(file.parent)}
        instance_id, queue = await self.manager.start(definition, params, trigger,
                                                      subscribe=True)
        assert queue is not None
        return instance_id, queue

    async def _follow(self, instance_id: str,
                      queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
        """The agent's `_follow` (daemon.py), minus the socket. The queue holds every
        event since the start, so an instance that ran on meanwhile is followed all the
        same."""
        store = self.worker.store
        try:
            while True:
                event = await queue.get()
                if event["kind"] == "intermediate_return":
                    summary = instance_summary(
                        await self.worker.call(store.get_instance, instance_id), None)
                    summary["intermediate"] = event["data"]["value"]
                    return summary
                if event["kind"] == "instance_settled":
                    record = await self.worker.call(store.get_instance, instance_id)
                    if record.status != Status.RUNNING or instance_id not in self.manager.tasks:
                        return await self._summary(instance_id)
        finally:
            self.manager.unsubscribe(instance_id, queue)

    async def _summary(self, instance_id: str) -> dict[str, Any]:
        store = self.worker.store
        record = await self.worker.call(store.get_instance, instance_id)
        summary = instance_summary(record, await self.worker.call(store.find_checkpoint,
                                                                  record.id))
        child = await self.worker.call(waiting_for, record, store.get_instance)
        if child is not None:
            summary["waiting_for"] = child
        return summary

    def wait(self, instance_id: str, status: str | Iterable[str] = ("completed", "failed",
                                                                    "paused"),
             timeout: float = TIMEOUT) -> dict[str, Any]:
        """Run the loop until the instance has `status` (one or any of several); then
        what `procctl show --json` prints of it (history included)."""
        wanted = {status} if isinstance(status, str) else set(status)

        async def until() -> dict[str, Any]:
            while True:
                record = await self.worker.call(self.worker.store.get_instance, instance_id)
                # a status other than running counts once its task has ended (a paused
                # instance may still be resuming with a signal its pause took)
                if record.status in wanted and (record.status == Status.RUNNING
                                                or instance_id not in self.manager.tasks):
                    return await self._show(instance_id)
                await asyncio.sleep(0.01)
        return self._call(until(), timeout)

    def idle(self, timeout: float = TIMEOUT) -> None:
        """Run the loop until no instance runs in memory (children and woken parents
        included)."""
        async def until() -> None:
            while self.manager.tasks:
                await asyncio.gather(*list(self.manager.tasks.values()),
                                     return_exceptions=True)
                await asyncio.sleep(0)
        self._call(until(), timeout)

    def sleep(self, seconds: float) -> None:
        """Let the loop (and the instances on it) run for `seconds`."""
        self._call(asyncio.sleep(seconds), seconds + TIMEOUT)

    # -- reading ----------------------------------------------------------------------

    def summary(self, instance_id: str) -> dict[str, Any]:
        """The instance summary, as `run --wait --json` ends with it."""
        return self._call(self._summary(instance_id))

    def show(self, instance_id: str) -> dict[str, Any]:
        """What `procctl show --json` prints: the summary, stored variables and
        position when a checkpoint is kept, and the history from the store."""
        return self._call(self._show(instance_id))

    async def _show(self, instance_id: str) -> dict[str, Any]:
        store = self.worker.store
        summary = await self._summary(instance_id)
        checkpoint = await self.worker.call(store.find_checkpoint, instance_id)
        if checkpoint is not None:
            stored = load_snapshot(checkpoint.snapshot_json)
            summary["stored_variables"] = values.to_plain(stored.variables)
            summary["position"] = stored.hydration_point
        summary["history"] = await self._history(instance_id)
        return summary

    def history(self, instance_id: str) -> History:
        """The instance's events as the store holds them (`show --json`'s history)."""
        return self._call(self._history(instance_id))

    async def _history(self, instance_id: str) -> History:
        events = await self.worker.call(self.worker.store.events, instance_id)
        return [{"at": e.at, "kind": e.kind, "step_id": e.step_id, "step_path": e.step_path,
                 "data": json.loads(e.data_json)} for e in events]

    def instances(self, process: str | None = None) -> list[dict[str, Any]]:
        """Every instance's summary (of one process), newest first."""
        async def read() -> list[dict[str, Any]]:
            store = self.worker.store
            records = await self.worker.call(store.list_instances,
                                           process_name=process, limit=10_000)
            return [await self._summary(r.id) for r in records]
        return self._call(read())

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """The summaries of the instances a parent's call steps started."""
        return [s for s in self.instances() if s["parent_id"] == parent_id]

    # -- resuming ---------------------------------------------------------------------

    def resume(self, correlation_id: str, payload: Any = None, *,
               set_values: dict[str, Any] | None = None, signal_id: str | None = None,
               source: str = "file:harness.json", follow: bool = True,
               timeout: float = TIMEOUT) -> dict[str, Any]:
        """Deliver a signal through the signal desk, as a signal file's (`source`
        `file:...`, resumed_by signal) or `procctl resume`'s (`cli:...`, manual) is
        delivered. Returns {"signal": its summary, "instance": the instance's summary
        once it settled again (with `follow` and an applied signal)}."""
        async def deliver() -> dict[str, Any]:
            delivery = await self.desk.deliver(
                correlation_id=correlation_id, payload=payload, signal_id=signal_id,
                source=source, set_values=set_values)
            out: dict[str, Any] = {"signal": signal_summary(delivery.signal)}
            if follow and delivery.outcome == "applied" and delivery.instance_id:
                out["instance"] = await self._settled(delivery.instance_id)
            return out
        return self._call(deliver(), timeout)

    def signal_file(self, content: dict[str, Any] | str, name: str = "signal.json"
                    ) -> None:
        """Write a signal file (JSON object, or raw text) and let the desk process it as
        the watcher would hand it over."""
        path = self.signals_dir / name
        text = content if isinstance(content, str) else json.dumps(content)
        path.write_text(text, encoding="utf-8")
        self._call(self.desk.process_file(path))

    def queue_signal(self, correlation_id: str, payload: Any = None, *,
                     set_values: dict[str, Any] | None = None,
                     signal_id: str | None = None) -> Path:
        """Write the signal file `procctl resume` writes (sender "procctl resume"),
        and leave it for the desk: processed at the next `restart`, as the signal files
        that wait for an agent are."""
        document: dict[str, Any] = {"correlation_id": correlation_id, "payload": payload,
                                    "signal_id": signal_id or uuid.uuid4().hex,
                                    "sender": "procctl resume"}
        if set_values:
            document["set"] = set_values
        path = self.signals_dir / f"resume-{document['signal_id']}.json"
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    def resume_due(self, at: datetime) -> list[str]:
        """The scheduler's tick for scheduled resumes, with the clock at `at`: every
        paused instance whose resume time is at or before it is resumed; their ids."""
        async def tick() -> list[str]:
            due = await self.worker.call(self.worker.store.due_resumes, to_stamp(at))
            return [i for i in due if await self.lifecycle.resume_scheduled(i)]
        return self._call(tick())

    def expire_due(self, at: datetime) -> list[str]:
        """The scheduler's tick for TTLs, with the clock at `at`: every paused or failed
        instance whose checkpoint expired before it gets its `on_expire` policy (fails,
        or resumes with the expiry payload); their ids."""
        async def tick() -> list[str]:
            return [e.instance_id for e in await self.scheduler.expire(to_stamp(at))]
        return self._call(tick())

    def due(self, at: datetime) -> list[str]:
        """The instances a scheduler tick at `at` would resume (none is resumed)."""
        return self._call(self.worker.call(self.worker.store.due_resumes, to_stamp(at)))

    async def _settled(self, instance_id: str) -> dict[str, Any]:
        store = self.worker.store
        while True:
            record = await self.worker.call(store.get_instance, instance_id)
            if record.status != Status.RUNNING and instance_id not in self.manager.tasks:
                return await self._summary(instance_id)
            task = self.manager.tasks.get(instance_id)
            if task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
            else:
                await asyncio.sleep(0.01)
