"""The typed protocol messages: every request survives the wire, bad ones are usage errors."""

from __future__ import annotations

import json
from typing import Any, get_args

import pytest

from procctl.agent.errors import UsageError
from procctl.agent.messages import (
    REQUESTS,
    AwaitSignalRequest,
    Event,
    Failure,
    FollowRequest,
    Request,
    Result,
    RunRequest,
    parse_reply,
    parse_request,
    reply_message,
    request_message,
)

SAMPLES: list[Any] = [
    RunRequest(source="[process]", file="a.toml", params={"n": 1}, wait=True),
    FollowRequest(instance_id="abc123", quiet=True),
    AwaitSignalRequest(signal_id="s1", follow=True, announce=True, wait_seconds=3.5),
]


def test_every_request_type_has_its_op() -> None:
    assert set(REQUESTS) == {cls.op for cls in get_args(Request)}
    assert len(REQUESTS) == len(get_args(Request))


@pytest.mark.parametrize("request_", SAMPLES + [cls() for cls in get_args(Request)
                                                if cls.op in ("status", "stop")])
def test_a_request_reads_back_as_it_was_sent(request_: Any) -> None:
    wire = json.loads(json.dumps(request_message(request_)))
    assert parse_request(wire) == request_


def test_an_older_clients_watch_is_a_follow() -> None:
    assert parse_request({"op": "watch", "instance_id": "x"}) == FollowRequest("x")


@pytest.mark.parametrize(("message", "says"), [
    ({"op": "fly"}, "no operation 'fly'"),
    ({"op": "follow"}, "lacks its field 'instance_id'"),
    ({"op": "follow", "instance_id": 7}, "field 'instance_id' is not of its type"),
    ({"op": "await_signal", "signal_id": "s", "wait_seconds": "soon"}, "'wait_seconds'"),
])
def test_a_bad_request_is_a_usage_error_naming_what_is_wrong(message: dict[str, Any],
                                                             says: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_request(message)
    assert says in caught.value.message


def test_replies_read_back_as_they_were_sent() -> None:
    for reply in (Event({"kind": "step_started", "step_id": "a"}), Result({"status": "ok"}),
                  Failure("refused", "no", "try later")):
        assert parse_reply(json.loads(json.dumps(reply_message(reply)))) == reply
    with pytest.raises(ValueError):
        parse_reply({"type": "gossip"})
