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

import importlib
import threading
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from procctl.agent.paths import HomePaths
from procctl.cli.web import events, security

STATIC = Path(__file__).resolve().parent / "static"

#: the modules whose `ROUTES` are mounted when they are there: the pages and the actions
#: are written beside this module and may not be in a given checkout yet; a module that
#: is there but fails to import is an error, not a missing page
ROUTE_MODULES = ("pages", "actions")

PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>procctl ui</title></head>
<body><h1>procctl ui</h1><p>The server runs; this procctl has no pages yet.</p></body></html>
"""


def optional_routes(name: str) -> list[BaseRoute]:
    """`procctl.cli.web.NAME.ROUTES`, or [] when there is no such module."""
    module_name = f"procctl.cli.web.{name}"
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        return []
    return list(module.ROUTES)


async def placeholder(request: Request) -> Response:
    return HTMLResponse(PLACEHOLDER)


async def server_error(request: Request, exc: Exception) -> Response:
    """A failure's response: outside the guard (Starlette answers it first), so it
    carries the security headers itself."""
    return PlainTextResponse("Internal server error: see the terminal running procctl ui.",
                             status_code=500, headers=security.HEADERS)


def build_app(home: HomePaths, token: str) -> Starlette:
    """The application for `home`: every request needs `token` (security.py)."""
    routes: list[BaseRoute] = [Route("/events", events.events, name="events")]
    for name in ROUTE_MODULES:
        routes += optional_routes(name)
    if not any(isinstance(route, Route) and route.path == "/" for route in routes):
        routes.append(Route("/", placeholder, name="index"))
    routes.append(Mount("/static", StaticFiles(directory=STATIC, check_dir=False),
                        name="static"))
    handlers: dict[Any, Any] = {500: server_error}
    app = Starlette(routes=routes, middleware=[Middleware(security.Guard, token=token)],
                    exception_handlers=handlers)
    app.state.home = home
    app.state.token = token
    app.state.stopping = threading.Event()
    return app
