"""The web view's actions: `POST /api/resume`, `/api/cancel` and `/api/retry`.

Each takes a JSON object and answers {ok, status, message, instance} (plus `field` for a
payload that does not fit, `hint` when there is something to do): `status` is what
became of the action (applied, pending, rejected, duplicate, refused, cancelled,
retried, invalid, not_found, unreachable, error), `instance` the instance's summary
(agent/summary.py) as it stands once it settled, or after SETTLE_SECONDS.

A resume is checked first, as the page checks it: an instance must wait at the
correlation ID, and the payload must have the fields its checkpoint expects (declared
with `expects`, typed; else those later steps read, present): a 400 names the field.
Then it is sent as `procctl resume` sends it (cli/signal_send.py: a signal file and the
agent's await_signal), and the agent checks it again. Cancel and retry go to the agent
over its socket. The agent is started when none runs, as `procctl retry` does.

The client is synchronous: each action runs in a worker thread, not on the event loop.
The token and Origin checks are the app's (cli/web/security.py), before these routes.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import GeneratorType
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from procctl.agent import bounded_json
from procctl.agent.atomic import write_bytes_atomically
from procctl.agent.client import AgentClient
from procctl.agent.config import load_config
from procctl.agent.errors import (
    AgentError,
    AgentUnreachable,
    InstanceNotFound,
    Refused,
    UsageError,
)
from procctl.agent.paths import HomePaths
from procctl.agent.signals import encode_document, signal_id_problem
from procctl.agent.summary import instance_summary
from procctl.cli.commands.resume_checks import check_size, refusal
from procctl.cli.options import has_store, read_store
from procctl.cli.signal_send import await_signal, signal_path
from procctl.store import StoreContract
from procctl.store.clock import utc_now
from procctl.store.errors import NotFound, StoreError
from procctl.store.records import SignalStatus, Status

if TYPE_CHECKING:
    from procctl.agent.definition.model import PayloadField

#: how long an action waits for its instance to pause or end before it answers with the
#: instance as it stands (the page follows it live from there)
SETTLE_SECONDS = 5.0
#: how long a resume waits for the agent to take its signal
SIGNAL_TIMEOUT = 60.0
#: a request body beyond the home's max_signal_bytes by more than this is refused unread
BODY_SLACK = 16_384
POLL_SECONDS = 0.05
SENDER = "procctl ui"


@dataclass(frozen=True)
class Outcome:
    """An action's answer: its HTTP status code and its JSON body."""

    code: int
    ok: bool
    status: str
    message: str
    instance: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"ok": self.ok, "status": self.status, "message": _sentence(self.message),
                "instance": self.instance, **self.extra}


def _sentence(message: str) -> str:
    """The message as the page shows it: capitalised, unless it starts with a name
    (`signal_id: ...`)."""
    first = message.split(" ", 1)[0]
    return message if "_" in first else message[:1].upper() + message[1:]


class BadRequest(Exception):
    """The request's body is not what the route takes: 400 (or `code`) with the message."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# -- resume ---------------------------------------------------------------------------


def resume_action(home: HomePaths, correlation_id: str, payload: dict[str, Any], *,
                  signal_id: str | None = None, timeout: float = SIGNAL_TIMEOUT,
                  settle: float = SETTLE_SECONDS) -> Outcome:
    """Check the payload against what the instance at `correlation_id` expects, send it
    as `procctl resume` does, and answer with what became of it."""
    if signal_id is not None and (problem := signal_id_problem(signal_id)) is not None:
        return Outcome(400, False, "invalid", f"signal_id: {problem}",
                       extra={"field": "signal_id"})
    refused = refusal(home, correlation_id)
    if refused is not None:
        return Outcome(409, False, "refused", refused.message,
                       _summary(home, refused.instance_id),
                       {"did_you_mean": refused.did_you_mean})
    instance_id, fields = read_store(home, lambda store: _expected(store, correlation_id))
    unfit = None if fields is None else payload_unfit(fields, payload)
    if unfit is not None:
        name, reason = unfit
        return Outcome(400, False, "refused", reason, _summary(home, instance_id),
                       {"field": name})
    signal_id = signal_id or uuid.uuid4().hex
    document = {"correlation_id": correlation_id, "payload": payload,
                "signal_id": signal_id, "sender": SENDER}
    settings = load_config(home.config)
    data = encode_document(document)
    check_size(len(data), int(settings["max_signal_bytes"]))
    client = AgentClient(home)
    client.start_background()
    path = signal_path(home, settings, signal_id)
    outcome = await_signal(client, signal_id, path.name, utc_now(), timeout, follow=False,
                           quiet=True, write=lambda: write_bytes_atomically(path, data))
    signal = outcome["signal"]
    status = str(signal["status"])
    target = signal.get("instance_id") or instance_id
    extra = {"signal": signal}
    if status == SignalStatus.APPLIED:
        instance = _settled(home, str(target), settle)
        return Outcome(200, not _failed(instance), status,
                       _resumed_text(instance, correlation_id), instance, extra)
    if status == SignalStatus.PENDING:
        return Outcome(202, True, status, f"held pending: no instance is paused at "
                       f"{correlation_id!r} yet; it is delivered when one pauses there",
                       _summary(home, target), extra)
    reason = str(signal.get("reason") or status)
    named = _field_named(fields or [], payload) if "payload" in reason else None
    if named is not None:
        extra["field"] = named
    return Outcome(409, False, status, f"not resumed: {reason}", _summary(home, target),
                   extra)


def payload_unfit(fields: list[PayloadField], payload: dict[str, Any]
                  ) -> tuple[str, str] | None:
    """The first field the payload lacks or has of the wrong type, and why (None: it
    fits). A declared field is checked as the agent checks it; a field found in later
    steps (type "any") must be there when it is not optional."""
    from procctl.agent.definition.payload_fields import payload_problem

    for wanted in fields:
        if payload_problem((wanted,), payload) is None:
            continue
        if wanted.declared:
            return wanted.name, str(payload_problem(tuple(fields), payload))
        return wanted.name, (f"payload field {wanted.name!r} is missing: a later step of "
                             "the process reads it, and would fail without it")
    return None


def _field_named(fields: list[PayloadField], payload: dict[str, Any]) -> str | None:
    """The field that made the agent refuse a payload, when it is one of `fields`."""
    from procctl.agent.definition.payload_fields import payload_problem

    for wanted in fields:
        if payload_problem((wanted,), payload) is not None:
            return wanted.name
    return None


def _expected(store: StoreContract, correlation_id: str
              ) -> tuple[str | None, list[PayloadField] | None]:
    """The instance waiting at `correlation_id`, and the payload fields its checkpoint
    expects (None when that cannot be read: the agent checks what it declares)."""
    from procctl.agent.definition.payload_fields import expects_from_json
    from procctl.agent.errors import DefinitionError
    from procctl.cli.payload_hints import expected_fields, pinned_definition

    holder = store.resume_target(correlation_id).holder
    if holder is None:
        return None, None
    if holder.expects_json:
        return holder.instance_id, list(expects_from_json(holder.expects_json) or ())
    record = store.get_instance(holder.instance_id)
    checkpoint = store.find_checkpoint(record.id)
    if checkpoint is None:
        return record.id, None
    try:
        definition = pinned_definition(store, record.definition_sha256)
    except (DefinitionError, NotFound):
        return record.id, None
    return record.id, expected_fields(definition, checkpoint.step_id)


def _resumed_text(instance: dict[str, Any] | None, correlation_id: str) -> str:
    if instance is None:
        return f"resumed the instance paused at {correlation_id!r}"
    return (f"resumed instance {instance['instance_id']} ({correlation_id}): "
            f"{_state(instance)}")


def _failed(instance: dict[str, Any] | None) -> bool:
    """Whether the action's instance failed (the action was done; `ok` is false, as
    the CLI's exit code is not 0)."""
    return instance is not None and instance.get("status") == Status.FAILED


def _state(instance: dict[str, Any]) -> str:
    """`completed`, `paused`, `running`, or `failed: <why>`."""
    error = instance.get("error")
    if _failed(instance) and isinstance(error, dict) and error.get("message"):
        return f"failed: {error['message']}"
    return str(instance["status"])


# -- cancel and retry ------------------------------------------------------------------


def cancel_action(home: HomePaths, instance_id: str, reason: str | None, *,
                  settle: float = SETTLE_SECONDS) -> Outcome:
    """Cancel through the agent (started if none runs), as `procctl cancel` does with
    one running."""
    client = AgentClient(home)
    client.start_background()
    done = client.request("cancel", instance_id=instance_id, by=requester(), reason=reason,
                          timeout=SIGNAL_TIMEOUT)
    cancelled_id = str(done["instance_id"])
    instance = _settled(home, cancelled_id, settle) or done
    was = ("it was paused: its checkpoint is discarded"
           if done.get("cancelled_from") == "paused"
           else "it was running: its step was stopped")
    return Outcome(200, True, "cancelled", f"cancelled instance {cancelled_id}: {was}",
                   instance, {"children_cancelled": done.get("children_cancelled") or []})


def retry_action(home: HomePaths, instance_id: str, *,
                 settle: float = SETTLE_SECONDS) -> Outcome:
    """Retry through the agent (started if none runs); answered once the agent has
    retried it and it settled (or after `settle` seconds: it goes on)."""
    client = AgentClient(home)
    client.start_background()
    stream = client.stream("retry", instance_id=instance_id, timeout=SIGNAL_TIMEOUT)
    action, retried = "retried", instance_id
    try:
        for kind, payload in stream:
            if kind == "result":
                retried = str(payload.get("instance_id") or retried)
                break
            if payload.get("kind") == "retry":
                action = str(payload["data"]["action"])
                retried = str(payload["instance_id"])
                break
    finally:
        if isinstance(stream, GeneratorType):  # the instance goes on: it is read from
            stream.close()                      # the store from here
    instance = _settled(home, retried, settle)
    shown = f": {_state(instance)}" if instance else ""
    return Outcome(200, not _failed(instance), "retried",
                   f"instance {retried} {action}{shown}", instance, {"action": action})


def requester() -> str:
    """Who cancels from the page: `ui:USER@HOST`, recorded with the cancellation."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid
        user = f"uid{os.getuid()}"
    return f"ui:{user}@{socket.gethostname()}"


# -- reading the instance ----------------------------------------------------------------


def _summary(home: HomePaths, instance_id: str | None) -> dict[str, Any] | None:
    """The instance's summary as stored now (None: no such instance, or no store)."""
    if instance_id is None or not has_store(home):
        return None

    def read(store: StoreContract) -> dict[str, Any] | None:
        try:
            record = store.get_instance(instance_id)
        except NotFound:
            return None
        return instance_summary(record, store.find_checkpoint(record.id))

    return read_store(home, read)


def _settled(home: HomePaths, instance_id: str, seconds: float) -> dict[str, Any] | None:
    """The instance's summary once it is no longer running, or as it stands after
    `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        summary = _summary(home, instance_id)
        if summary is None or summary["status"] != Status.RUNNING \
                or time.monotonic() >= deadline:
            return summary
        time.sleep(POLL_SECONDS)


# -- the routes ------------------------------------------------------------------------


def failure(exc: Exception) -> Outcome:
    """An error of the agent or the store as the action's answer."""
    message = str(getattr(exc, "message", exc))
    hint = getattr(exc, "hint", None)
    extra = {"hint": hint} if hint else {}
    if isinstance(exc, UsageError):
        return Outcome(400, False, "invalid", message, extra=extra)
    if isinstance(exc, InstanceNotFound | NotFound):
        return Outcome(404, False, "not_found", message, extra=extra)
    if isinstance(exc, Refused):
        return Outcome(409, False, "refused", message, extra=extra)
    if isinstance(exc, AgentUnreachable):
        return Outcome(503, False, "unreachable", message, extra=extra)
    return Outcome(500, False, "error", message, extra=extra)


def _home(request: Request) -> HomePaths:
    home: HomePaths = request.app.state.home
    return home


async def _body(request: Request, home: HomePaths) -> dict[str, Any]:
    """The request's JSON object, read no further than the home's signal size allows."""
    settings = await run_in_threadpool(load_config, home.config)
    limit = int(settings["max_signal_bytes"]) + BODY_SLACK
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BadRequest(f"the request is over {limit} bytes (max_signal_bytes is "
                             f"{settings['max_signal_bytes']})", 413)
        chunks.append(chunk)
    try:
        text = b"".join(chunks).decode("utf-8")
        body = bounded_json.loads(text)
    except UnicodeDecodeError:
        raise BadRequest("the request body is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise BadRequest(f"the request body is not JSON: {exc.msg}") from None
    except bounded_json.JSONLimit as exc:
        raise BadRequest(f"the request body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the request body must be a JSON object")
    return body


def _text(body: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BadRequest(f"{name} must be a non-empty string")
    return value


def _answer(outcome: Outcome) -> JSONResponse:
    return JSONResponse(outcome.body(), status_code=outcome.code)


async def _act(request: Request,
               run: Callable[[HomePaths, dict[str, Any]], Outcome]) -> JSONResponse:
    """Read the body, run the action in a worker thread, answer with its outcome."""
    home = _home(request)
    try:
        body = await _body(request, home)
        return _answer(await run_in_threadpool(run, home, body))
    except BadRequest as exc:
        return _answer(Outcome(exc.code, False, "invalid", exc.message))
    except (AgentError, StoreError) as exc:
        return _answer(failure(exc))


def _resume(home: HomePaths, body: dict[str, Any]) -> Outcome:
    correlation_id = str(_text(body, "correlation_id"))
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        raise BadRequest("payload must be a JSON object of fields")
    return resume_action(home, correlation_id, payload,
                         signal_id=_text(body, "signal_id", required=False))


def _cancel(home: HomePaths, body: dict[str, Any]) -> Outcome:
    reason = body.get("reason")
    if reason is not None and not isinstance(reason, str):
        raise BadRequest("reason must be a string")
    return cancel_action(home, str(_text(body, "instance_id")), reason or None)


def _retry(home: HomePaths, body: dict[str, Any]) -> Outcome:
    return retry_action(home, str(_text(body, "instance_id")))


async def resume(request: Request) -> JSONResponse:
    return await _act(request, _resume)


async def cancel(request: Request) -> JSONResponse:
    return await _act(request, _cancel)


async def retry(request: Request) -> JSONResponse:
    return await _act(request, _retry)


ROUTES = [
    Route("/api/resume", resume, methods=["POST"]),
    Route("/api/cancel", cancel, methods=["POST"]),
    Route("/api/retry", retry, methods=["POST"]),
]
