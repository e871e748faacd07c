"""`procctl retry ID`: a failed or held instance runs again, from its checkpoint
through the recover block when it holds one, else from the beginning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from procctl.agent.follower import Send
from procctl.agent.messages import Event, RetryRequest

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: RetryRequest, send: Send) -> None:
    await agent.gate(agent.recovered)
    record = await agent.worker.call(agent.worker.store.get_instance, request.instance_id)
    # Subscribed before it runs again, so that every event of the run is sent.
    queue = agent.manager.subscribe(record.id)
    try:
        action = await agent.lifecycle.retry(record.id)
    except BaseException:
        agent.manager.unsubscribe(record.id, queue)
        raise
    await send(Event({"kind": "retry", "instance_id": record.id,
                      "data": {"action": action}}))
    await agent.follower.follow(record.id, send, queue)
