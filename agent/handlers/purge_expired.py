"""`procctl purge-expired`: every TTL policy due now, a batch per transaction; each
batch's outcome is a `purge_progress` event (the CLI shows progress and never waits
long for a line), then the totals."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from procctl.agent.follower import Send
from procctl.agent.messages import Event, PurgeExpiredRequest, Result

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: PurgeExpiredRequest, send: Send) -> None:
    await agent.gate(agent.recovered)
    done = 0
    # Closed at once if the command goes away mid-purge (the clock takes over).
    async with contextlib.aclosing(agent.scheduler.purge(dry_run=request.dry_run)) as batches:
        async for batch in batches:
            done += len(batch)
            await send(Event({"kind": "purge_progress", "data": {
                "expired": [e.to_json() for e in batch], "done": done}}))
    await send(Result({"dry_run": request.dry_run, "done": done}))
