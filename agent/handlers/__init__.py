"""One module per request, named like the command that sends it, and the one dispatch
that hands each typed request (agent/messages.py) to its module. Exhaustive: a request
type without a handler is a mypy error here."""

from __future__ import annotations

from typing import TYPE_CHECKING, assert_never

from procctl.agent.follower import Send
from procctl.agent.handlers import (
    await_signal,
    cancel,
    follow,
    purge_expired,
    retry,
    run,
    status,
    stop,
)
from procctl.agent.messages import (
    AwaitSignalRequest,
    CancelRequest,
    FollowRequest,
    PurgeExpiredRequest,
    Request,
    RetryRequest,
    RunRequest,
    StatusRequest,
    StopRequest,
)

if TYPE_CHECKING:
    from procctl.agent.daemon import Agent


async def dispatch(agent: Agent, request: Request, send: Send) -> None:
    """Run the handler of `request`'s type."""
    match request:
        case StatusRequest():
            await status.handle(agent, request, send)
        case StopRequest():
            await stop.handle(agent, request, send)
        case RunRequest():
            await run.handle(agent, request, send)
        case FollowRequest():
            await follow.handle(agent, request, send)
        case AwaitSignalRequest():
            await await_signal.handle(agent, request, send)
        case RetryRequest():
            await retry.handle(agent, request, send)
        case CancelRequest():
            await cancel.handle(agent, request, send)
        case PurgeExpiredRequest():
            await purge_expired.handle(agent, request, send)
        case _:
            assert_never(request)
