"""`procctl agent status`: the agent's state, start-up progress, health and lease."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

from procctl.agent import VERSION, protocol
from procctl.agent.follower import Send
from procctl.agent.messages import Result, StatusRequest

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: StatusRequest, send: Send) -> None:
    await send(Result({
        "pid": os.getpid(),
        "home": str(agent.paths.home),
        "version": VERSION,
        "protocol": protocol.PROTOCOL_VERSION,
        "started_at": agent.started_at,
        "uptime_seconds": round(time.monotonic() - agent.started_monotonic, 3),
        "instances_running": len(agent.manager.tasks),
        "signals_dir": str(agent.desk.directory),
        "store_commits": agent.store_commits(),
        "store": agent.store_location(),
        **agent.membership.to_json(),
        **agent.health.to_json(),
    }))
