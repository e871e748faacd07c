"""Who may use the web view: every request is checked here before any route sees it.

- The client must be on a loopback address (the server binds 127.0.0.1 only; this
  refuses anything that reaches it another way), and the Host header must name a
  loopback host (a page of another site that got its name resolved to 127.0.0.1, DNS
  rebinding, is refused).
- A GET or HEAD needs the token: `?token=` (the URL `procctl ui` prints), the
  `X-Procctl-Token` header, or the `procctl_ui` cookie that a GET with the right
  `?token=` sets, so that the pages' links work without it.
- Any other method (the actions are POSTs) needs the token in the `X-Procctl-Token`
  header, the cookie alone is not enough, and an `Origin` equal to this server's own
  (`http://` and the Host header): another site's page can send neither.
- Every response carries the security headers below, refusals included.

A refusal is a 403 with one line of text saying what to do.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "procctl_ui"
TOKEN_HEADER = "X-Procctl-Token"
TOKEN_PARAM = "token"

CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")
#: on every response
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: on every response but static files: pages carry the token in a meta tag
NO_STORE = ("Cache-Control", "no-store")
STATIC_PREFIX = "/static/"

#: the host names (of the Host header) that mean this machine
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})

NOT_LOOPBACK = "Forbidden: procctl ui answers on the loopback interface only."
BAD_HOST = ("Forbidden: the Host header must name this machine (127.0.0.1 or localhost); "
            "open the URL procctl ui printed.")
NO_TOKEN = ("Forbidden: no valid token. Open the URL procctl ui printed (it ends in "
            "?token=...).")
NO_HEADER_TOKEN = (f"Forbidden: an action needs the {TOKEN_HEADER} header with the token "
                   "(the pages send it).")
OTHER_ORIGIN = ("Forbidden: an action must come from this server's own pages (its Origin "
                "header must be this server's).")

_READS = frozenset({"GET", "HEAD"})


def is_loopback(host: str | None) -> bool:
    """Whether a client address is a loopback one (an IPv4-mapped one too)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def host_name(host_header: str) -> str:
    """The name part of a Host header: "127.0.0.1:8000" -> "127.0.0.1", "[::1]:80" ->
    "[::1]"."""
    if host_header.startswith("["):
        return host_header.partition("]")[0] + "]"
    return host_header.partition(":")[0]


def same_token(given: str | None, token: str) -> bool:
    return given is not None and secrets.compare_digest(given.encode(), token.encode())


def refusal(request: Request, token: str) -> str | None:
    """Why `request` is refused, or None when it may go on."""
    client = request.client.host if request.client else None
    if not is_loopback(client):
        return NOT_LOOPBACK
    host = request.headers.get("host", "")
    if host_name(host).lower() not in LOOPBACK_NAMES:
        return BAD_HOST
    header = request.headers.get(TOKEN_HEADER)
    if request.method in _READS:
        if any(same_token(given, token) for given in (
                request.query_params.get(TOKEN_PARAM), header, request.cookies.get(COOKIE))):
            return None
        return NO_TOKEN
    if not same_token(header, token):
        return NO_HEADER_TOKEN
    if request.headers.get("origin") != f"{request.url.scheme}://{host}":
        return OTHER_ORIGIN
    return None


def cookie_header(token: str) -> str:
    return f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"


class Guard:
    """ASGI middleware: refuses what `refusal` refuses, sets the cookie after a GET
    with the right `?token=`, and adds the headers to every response."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websockets here
            await send({"type": "websocket.close", "code": 1008})
            return
        request = Request(scope)
        refused = refusal(request, self.token)
        set_cookie = (refused is None and request.method in _READS
                      and same_token(request.query_params.get(TOKEN_PARAM), self.token)
                      and request.cookies.get(COOKIE) != self.token)
        send = _with_headers(send, static=request.url.path.startswith(STATIC_PREFIX),
                             cookie=cookie_header(self.token) if set_cookie else None)
        if refused is not None:
            await PlainTextResponse(refused, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _with_headers(send: Send, *, static: bool, cookie: str | None) -> Send:
    """`send`, adding the security headers (and the cookie) to the response's start."""
    extra = dict(HEADERS)
    if not static:
        extra[NO_STORE[0]] = NO_STORE[1]

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            add_headers(message, extra)
            if cookie is not None:
                message["headers"] = [*message.get("headers", []),
                                      (b"set-cookie", cookie.encode("latin-1"))]
        await send(message)

    return sending


def add_headers(message: MutableMapping[str, Any], headers: dict[str, str]) -> None:
    """Add `headers` to a response's start message, except those it has already."""
    present = {name.lower() for name, _ in message.get("headers", [])}
    message["headers"] = [*message.get("headers", []), *(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in headers.items() if name.lower().encode("latin-1") not in present)]
