"""`procctl ui`: serve the web view of a home on 127.0.0.1, until Ctrl-C.

The port is bound here (a free one unless --port) and the bound socket handed to
uvicorn, so the URL printed is the one served. Starlette and uvicorn are the `ui` extra:
they are imported when the command runs, so its help and the rest of procctl work
without them.
"""

from __future__ import annotations

import errno
import secrets
import socket
import sys
from types import FrameType
from typing import Annotated

import typer

from procctl.agent.errors import UsageError
from procctl.cli import render
from procctl.cli.options import global_options, no_home_note

HOST = "127.0.0.1"
INSTALL_HINT = "pip install 'procctl[ui]'"
#: seconds the open event streams get to end when the server stops (they see it within
#: their poll interval, half a second)
SHUTDOWN_SECONDS = 3


def ui_command(
    ctx: typer.Context,
    port: Annotated[int | None, typer.Option(
        "--port", metavar="PORT", min=1, max=65535,
        help="Serve on this port of 127.0.0.1 (default: a free one).")] = None,
    open_browser: Annotated[bool, typer.Option(
        "--open", help="Open the page in the default web browser.")] = False,
) -> None:
    """Serve a local web view of the home: instances, paused ones with their graphs and
    resume forms, signals and definitions, in the browser.

    It listens on 127.0.0.1 only and prints a URL with a random token: only a request
    with the token (or the cookie its first visit sets) is served, and the page's
    actions (resume, cancel, retry) are refused from other sites. Ctrl-C stops it.
    Needs the ui extra: pip install 'procctl[ui]'.
    """
    options = global_options(ctx)
    try:
        import uvicorn

        from procctl.cli.web.app import build_app
    except ImportError as exc:
        if exc.name not in ("starlette", "uvicorn") and not str(exc.name).startswith(
                ("starlette.", "uvicorn.")):
            raise
        raise UsageError(f"procctl ui needs the ui extra: {exc.name} is not installed",
                         hint=INSTALL_HINT) from None
    listener = bind(port)
    token = secrets.token_urlsafe(32)
    url = f"http://{HOST}:{listener.getsockname()[1]}/?token={token}"
    note = no_home_note(options.home)
    if note is not None:
        render.note(note)
    print(f"procctl ui for the home {options.home.home}:", flush=True)
    print(url, flush=True)
    render.note("Ctrl-C stops it.")
    try:  # a Ctrl-C from here on, even before the server runs, ends it cleanly (exit 0)
        if open_browser:
            import webbrowser

            if not webbrowser.open(url):
                render.note("No web browser could be opened here: open the URL above.")
        app = build_app(options.home, token)
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                proxy_headers=False, server_header=False,
                                timeout_graceful_shutdown=SHUTDOWN_SECONDS)

        class Server(uvicorn.Server):
            def handle_exit(self, sig: int, frame: FrameType | None) -> None:
                app.state.stopping.set()  # the event streams end (cli/web/events.py)
                super().handle_exit(sig, frame)

        Server(config).run(sockets=[listener])
    except KeyboardInterrupt:
        pass  # uvicorn stopped cleanly, then passed Ctrl-C on: stopping is the way to end
    finally:
        listener.close()
    sys.stdout.flush()


def bind(port: int | None) -> socket.socket:
    """A listening socket on 127.0.0.1: `port`, or a free one; UsageError when `port`
    is taken or not ours to use."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((HOST, port or 0))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} of {HOST} is in use",
                             hint="give another --port, or none for a free one") from None
        where = f"port {port} of {HOST}" if port else f"a free port of {HOST}"
        raise UsageError(f"cannot listen on {where}: {exc.strerror or exc}",
                         hint="give another --port, or none for a free one") from None
    listener.set_inheritable(False)
    return listener
