"""The `http` task: one request with urllib, in a worker thread so the agent never blocks."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from procctl.agent.durations import parse_duration
from procctl.agent.tasks.base import TaskContext, TaskError

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD")
BODY_LIMIT = 10 * 1_048_576


async def http_task(args: Mapping[str, Any], ctx: TaskContext) -> Any:
    url = str(args["url"])
    if not url.startswith(("http://", "https://")):
        raise TaskError(f"url {url!r} must start with http:// or https://")
    method = str(args.get("method", "GET")).upper()
    if method not in METHODS:
        raise TaskError(f"method {method!r} is not one of {', '.join(METHODS)}")
    headers = {str(k): str(v) for k, v in (args.get("headers") or {}).items()}
    headers.setdefault("Idempotency-Key", ctx.idempotency_key)
    body: bytes | None = None
    if "json" in args:
        body = json.dumps(args["json"]).encode()
        headers.setdefault("Content-Type", "application/json")
    elif "body" in args:
        raw = args["body"]
        body = raw if isinstance(raw, bytes) else str(raw).encode()
    try:
        timeout = parse_duration(args.get("timeout", 30))
    except ValueError as exc:
        raise TaskError(f"timeout: {exc}") from exc
    expect = args.get("expect_status")
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    status, response_headers, payload = await asyncio.to_thread(_send, request, timeout)
    ok = status in expect if isinstance(expect, list) else 200 <= status < 300
    if expect is not None and not isinstance(expect, list):
        ok = status == int(expect)
    text = payload.decode("utf-8", "replace")
    parsed: Any = text
    if "json" in response_headers.get("content-type", "") and text:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            parsed = text
    if not ok:
        raise TaskError(f"{method} {url} answered {status}: {text[:300]}")
    return {"status": status, "headers": response_headers, "body": parsed}


def _send(request: urllib.request.Request, timeout: float) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return int(response.status), headers, response.read(BODY_LIMIT)
    except urllib.error.HTTPError as exc:
        headers = {k.lower(): v for k, v in exc.headers.items()}
        return int(exc.code), headers, exc.read(BODY_LIMIT)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TaskError(f"{request.get_method()} {request.full_url} failed: {reason}") from exc
