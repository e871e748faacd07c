"""The web view's application: its routes behind the guard of security.py.

Routes read `request.app.state.home` (the HomePaths of the home shown) and
`request.app.state.token` (the token, for the page's `<meta name="procctl-token">`).
`app.state.stopping` is set when the server stops: the event streams then end, so that
the server need not cut them off.

A test drives it with Starlette's TestClient as a browser on this machine would reach
it: `TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000))` (the
default `testserver` host and `testclient` address are refused, as any host that is not
this machine's), GETs with `?token=` once (or the `X-Procctl-Token` header), and POSTs
with the `X-Procctl-Token` header and `Origin: http://127.0.0.1`.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from procctl.agent.paths import HomePaths
from procctl.cli.web import actions, events, pages, security

STATIC = Path(__file__).resolve().parent / "static"


async def server_error(request: Request, exc: Exception) -> Response:
    """A failure's response: outside the guard (Starlette answers it first), so it
    carries the security headers itself."""
    return PlainTextResponse("Internal server error: see the terminal running procctl ui.",
                             status_code=500, headers=security.HEADERS)


def build_app(home: HomePaths, token: str) -> Starlette:
    """The application for `home`: every request needs `token` (security.py)."""
    routes: list[BaseRoute] = [Route("/events", events.events, name="events"),
                               *pages.ROUTES, *actions.ROUTES,
                               Mount("/static", StaticFiles(directory=STATIC), name="static")]
    handlers: dict[Any, Any] = {500: server_error}
    app = Starlette(routes=routes, middleware=[Middleware(security.Guard, token=token)],
                    exception_handlers=handlers)
    app.state.home = home
    app.state.token = token
    app.state.stopping = threading.Event()
    return app
