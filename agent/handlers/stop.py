"""`procctl agent stop`: the agent stops (running steps get the shutdown grace)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from procctl.agent.follower import Send
from procctl.agent.messages import Result, StopRequest

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: StopRequest, send: Send) -> None:
    await send(Result({"pid": os.getpid(), "stopping": True,
                       "instances_running": len(agent.manager.tasks)}))
    agent.stopping.set()
