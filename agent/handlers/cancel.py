"""`procctl cancel ID`: a running instance this agent runs stops at once (its `finally`
blocks run) and ends cancelled; a paused one is cancelled in the store (see
agent/cancelling.py). The result is what `procctl cancel --json` prints."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procctl.agent.cancelling import cancel, check_reason
from procctl.agent.engine.state import Cancellation
from procctl.agent.follower import Send
from procctl.agent.messages import CancelRequest, Result

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: CancelRequest, send: Send) -> None:
    await agent.gate(agent.recovered)
    cancellation = Cancellation(request.by, check_reason(request.reason))
    done = await cancel(agent.manager, request.instance_id, cancellation,
                        agent_id=agent.membership.agent_id)
    await send(Result(done.to_json()))
