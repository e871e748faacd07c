"""`procctl follow ID` and `procctl wait ID`: an instance's events from where it is
until it pauses or ends, whatever started it (`wait`: its outcome only)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procctl.agent.follower import Send
from procctl.agent.messages import FollowRequest

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: FollowRequest, send: Send) -> None:
    await agent.gate(agent.recovered)
    await agent.follower.follow(request.instance_id, send, quiet=request.quiet)
