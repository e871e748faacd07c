"""`procctl resume`: what became of a signal (by its signal_id); with follow, the run
it resumed, every step in order after a `signal_outcome` event (the command's header)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from procctl.agent.follower import Send
from procctl.agent.messages import AwaitSignalRequest, Event, Result
from procctl.agent.summary import signal_summary

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def handle(agent: Agent, request: AwaitSignalRequest, send: Send) -> None:
    await agent.gate(agent.recovered)
    # Following: subscribe to the instance before it runs on (the desk does it when the
    # signal applies), so that every event of the run is sent, in order.
    slot = agent.desk.want_follow(request.signal_id) if request.follow else None
    try:
        if request.announce:  # the sender writes its signal file now
            await send(Event({"kind": "awaiting_signal"}))
        record = await agent.desk.wait_for(request.signal_id, request.wait_seconds,
                                           file=request.file, since=request.since)
        if record is None:
            await send(Result({"signal": None}))
            return
        data: dict[str, Any] = {"signal": signal_summary(record)}
        if record.status == "applied" and record.instance_id and slot is not None:
            queue = slot.take(record.instance_id)
            # What became of the signal first: the command prints its header before
            # the steps.
            await send(Event({"kind": "signal_outcome", "instance_id": record.instance_id,
                              "data": data["signal"]}))
            await agent.follower.follow_into(record.instance_id, data, send, queue)
            return
        await send(Result(data))
    finally:
        if slot is not None:
            agent.desk.drop_follow(slot)
