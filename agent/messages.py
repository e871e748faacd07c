"""The typed messages of the socket protocol (agent/protocol.py carries them as lines).

Each request is a frozen dataclass named like the command that sends it, with an `op`
(its name on the wire) and its fields; the client builds one, the agent reads it back
with `parse_request` (unknown op, missing or ill-typed field: a usage error naming it)
and hands it to the handler module of the same name (agent/handlers/). A reply is an
`Event` (zero or more, for the requests that follow an instance), then one `Result` or
one `Failure`.

An agent and a client of other protocol versions say so in one line (protocol.py).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from procctl.agent.errors import UsageError


@dataclass(frozen=True)
class StatusRequest:
    """`procctl agent status`: the agent's state, start-up progress and health."""

    op: ClassVar[str] = "status"


@dataclass(frozen=True)
class StopRequest:
    """`procctl agent stop`."""

    op: ClassVar[str] = "stop"


@dataclass(frozen=True)
class RunRequest:
    """`procctl run FILE`: start an instance; with `wait`, follow it until it settles."""

    op: ClassVar[str] = "run"
    source: str
    file: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    base_dir: str | None = None
    wait: bool = False


@dataclass(frozen=True)
class FollowRequest:
    """`procctl follow ID` / `procctl wait ID`: an instance's events from where it is
    until it pauses or ends (`quiet`: its outcome only)."""

    op: ClassVar[str] = "follow"
    instance_id: str
    quiet: bool = False


@dataclass(frozen=True)
class AwaitSignalRequest:
    """`procctl resume`: what became of a signal (by its signal_id); with `follow`, the
    run it resumed too. `announce`: the agent says when it listens, and the sender writes
    its signal file then."""

    op: ClassVar[str] = "await_signal"
    signal_id: str
    follow: bool = False
    announce: bool = False
    file: str | None = None
    since: str | None = None
    wait_seconds: float | None = None


@dataclass(frozen=True)
class RetryRequest:
    """`procctl retry ID`."""

    op: ClassVar[str] = "retry"
    instance_id: str


@dataclass(frozen=True)
class CancelRequest:
    """`procctl cancel ID`: a running instance stops (its finally blocks run), a paused
    one is cancelled in the store; `by` is who asks (cli:USER@HOST), `reason` why."""

    op: ClassVar[str] = "cancel"
    instance_id: str
    by: str
    reason: str | None = None


@dataclass(frozen=True)
class PurgeExpiredRequest:
    """`procctl purge-expired`."""

    op: ClassVar[str] = "purge_expired"
    dry_run: bool = False


#: every request the agent takes
Request = Union[StatusRequest, StopRequest, RunRequest, FollowRequest,  # noqa: UP007
                AwaitSignalRequest, RetryRequest, CancelRequest, PurgeExpiredRequest]

REQUESTS: dict[str, type[Any]] = {cls.op: cls for cls in get_args(Request)}
#: old names still read (an older CLI's `watch` is `follow`)
ALIASES = {"watch": "follow"}


@dataclass(frozen=True)
class Event:
    """One event of an instance (or of the request: `awaiting_signal`, `purge_progress`)."""

    event: dict[str, Any]
    type: Literal["event"] = "event"


@dataclass(frozen=True)
class Result:
    """The request's outcome: the last message."""

    data: dict[str, Any]
    type: Literal["result"] = "result"


@dataclass(frozen=True)
class Failure:
    """The request failed: `kind` says how (usage, not_found, definition, refused,
    store, agent, version), `message` and `hint` what to do."""

    kind: str
    message: str
    hint: str | None = None
    type: Literal["error"] = "error"


Reply = Event | Result | Failure


def request_message(request: Request) -> dict[str, Any]:
    """The request as the wire's JSON object (without the version)."""
    return {"op": request.op, **dataclasses.asdict(request)}


def reply_message(reply: Reply) -> dict[str, Any]:
    """A reply as the wire's JSON object (without the version)."""
    match reply:
        case Event(event=event):
            return {"type": "event", "event": event}
        case Result(data=data):
            return {"type": "result", "data": data}
        case Failure(kind=kind, message=message, hint=hint):
            return {"type": "error", "error": {"kind": kind, "message": message,
                                               "hint": hint}}
        case _:
            typing.assert_never(reply)


def parse_request(message: dict[str, Any]) -> Request:
    """A request from its wire object; UsageError for an unknown op or a field that is
    missing or of the wrong type."""
    op = str(message.get("op", ""))
    cls = REQUESTS.get(ALIASES.get(op, op))
    if cls is None:
        raise UsageError(f"the agent has no operation {op!r}",
                         hint="the CLI and the agent may be different procctl versions")
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for spec in dataclasses.fields(cls):
        if spec.name in message:
            values[spec.name] = _checked(op, spec.name, message[spec.name], hints[spec.name])
        elif spec.default is dataclasses.MISSING and \
                spec.default_factory is dataclasses.MISSING:
            raise UsageError(f"request {op!r} lacks its field {spec.name!r}")
    request: Request = cls(**values)
    return request


def parse_reply(message: dict[str, Any]) -> Reply:
    """A reply from its wire object (ValueError for one that is none)."""
    kind = message.get("type")
    if kind == "event" and isinstance(message.get("event"), dict):
        return Event(message["event"])
    if kind == "result" and isinstance(message.get("data"), dict):
        return Result(message["data"])
    if kind == "error" and isinstance(message.get("error"), dict):
        error = message["error"]
        return Failure(str(error.get("kind") or "agent"), str(error.get("message")),
                       None if error.get("hint") is None else str(error["hint"]))
    raise ValueError(f"not a reply of the protocol: {str(message)[:200]}")


def _checked(op: str, name: str, value: Any, hint: Any) -> Any:
    """`value` if it has the field's type (an int where a float is asked for is one)."""
    allowed = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    for kind in allowed:
        base = get_origin(kind) or kind
        if base is type(None) and value is None:
            return value
        if base is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if base is bool and isinstance(value, bool):
            return value
        if base in (str, dict, list) and isinstance(value, base):
            return value
        if base is Any:
            return value
    raise UsageError(f"request {op!r}: field {name!r} is not of its type ({hint})")
