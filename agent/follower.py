"""The one event follower: an instance's events, sent to a client until it settles.

`run --wait`, `resume`, `retry`, `follow` and `wait` all go through `Follower.follow`:
from a queue subscribed before the instance ran on (so nothing is lost), from a queue
subscribed now, or, for an instance another agent sharing the store runs, from the
history that agent commits (polled). It ends with the instance's summary (a `Result`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from procctl.agent.instances import InstanceManager
from procctl.agent.messages import Event, Reply, Result
from procctl.agent.store_worker import StoreWorker
from procctl.agent.summary import instance_summary, waiting_for
from procctl.store.records import InstanceRecord

Send = Callable[[Reply], Awaitable[None]]
Queue = asyncio.Queue[dict[str, Any]]

#: seconds between two reads of the history of an instance another agent runs
FOLLOW_POLL = 0.2


class Follower:
    def __init__(self, manager: InstanceManager, worker: StoreWorker) -> None:
        self.manager = manager
        self.worker = worker

    async def follow(self, instance_id: str, send: Send, queue: Queue | None = None, *,
                     until_intermediate: bool = False, quiet: bool = False) -> None:
        """Send an instance's events until it settles, then its summary; with
        `until_intermediate`, stop at its first intermediate_return too (the summary
        then has `intermediate`); `quiet`: the summary only."""
        store = self.worker.store
        record = await self.worker.call(store.get_instance, instance_id)
        if queue is None and self._elsewhere(record):
            await self._follow_elsewhere(record.id, send, until_intermediate, quiet)
            return
        if queue is None:
            queue = self.manager.subscribe(record.id)
            record = await self.worker.call(store.get_instance, record.id)
        try:
            # A queue subscribed before the instance ran on (resume, retry) holds its
            # events from the start: they are sent even if it has settled since.
            while not queue.empty() or self._here_and_running(record):
                event = await queue.get()
                if event["kind"] == "instance_settled":
                    record = await self.worker.call(store.get_instance, record.id)
                    if not self._here_and_running(record):
                        break
                    continue
                if not quiet:
                    await send(Event(event))
                if until_intermediate and event["kind"] == "intermediate_return":
                    record = await self.worker.call(store.get_instance, record.id)
                    summary = instance_summary(record, None)
                    summary["intermediate"] = event["data"]["value"]
                    await send(Result(summary))
                    return
            if self._elsewhere(record):
                # Handed over to its pool, or taken over: it goes on elsewhere.
                await self._follow_elsewhere(record.id, send, until_intermediate, quiet)
                return
            await send(Result(await self.summary(record)))
        finally:
            self.manager.unsubscribe(record.id, queue)

    def _here_and_running(self, record: InstanceRecord) -> bool:
        return record.status == "running" and record.id in self.manager.tasks

    def _elsewhere(self, record: InstanceRecord) -> bool:
        """Running, and by another agent sharing the store."""
        return (self.worker.store.shared and record.status == "running"
                and record.id not in self.manager.tasks)

    async def summary(self, record: InstanceRecord) -> dict[str, Any]:
        """What `follow` ends with: the instance, its checkpoint and the child it waits
        for, if any."""
        store = self.worker.store
        checkpoint = await self.worker.call(store.find_checkpoint, record.id)
        summary = instance_summary(record, checkpoint)
        child = await self.worker.call(waiting_for, record, store.get_instance)
        if child is not None:
            summary["waiting_for"] = child
        return summary

    async def _follow_elsewhere(self, instance_id: str, send: Send,
                                until_intermediate: bool, quiet: bool) -> None:
        """The events of an instance that another agent runs, as that agent commits
        them (polled every FOLLOW_POLL seconds), until it settles; then its summary."""
        store = self.worker.store
        history = await self.worker.call(store.events, instance_id)
        after = history[-1].id if history else 0
        while True:
            record = await self.worker.call(store.get_instance, instance_id)
            for stored in await self.worker.call(store.events, instance_id, after):
                after = stored.id
                data = json.loads(stored.data_json)
                if not quiet:
                    await send(Event({"kind": stored.kind, "step_id": stored.step_id,
                                      "step_path": stored.step_path, "data": data,
                                      "at": stored.at}))
                if until_intermediate and stored.kind == "intermediate_return":
                    summary = instance_summary(record, None)
                    summary["intermediate"] = data.get("value")
                    await send(Result(summary))
                    return
            if record.status != "running":
                break
            if record.id in self.manager.tasks:  # taken over by this agent: its stream
                await self.follow(record.id, send, until_intermediate=until_intermediate,
                                  quiet=quiet)
                return
            await asyncio.sleep(FOLLOW_POLL)
        await send(Result(await self.summary(record)))

    async def follow_into(self, instance_id: str, data: dict[str, Any], send: Send,
                          queue: Queue | None = None) -> None:
        """`follow`, its summary sent inside `data` (as `instance`)."""
        results: list[dict[str, Any]] = []

        async def collect(reply: Reply) -> None:
            if isinstance(reply, Result):
                results.append(reply.data)
            else:
                await send(reply)

        await self.follow(instance_id, collect, queue)
        await send(Result({**data, "instance": results[-1]}))
