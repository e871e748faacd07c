"""The web view's server: who it serves (the token, loopback clients and hosts, the POST
header and Origin), the headers on every response, the live events, and `procctl ui`
itself as a real process on a home with a real agent.

The routes are driven with Starlette's TestClient as a browser on this machine reaches
them (base URL http://127.0.0.1, client 127.0.0.1) against the real SQLite store a real
agent wrote.
"""

from __future__ import annotations

import json
import signal
import socket
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLES, Procctl, unique_key, wait_for
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.testclient import TestClient

from procctl.agent.paths import HomePaths
from procctl.cli.web import events, security
from procctl.cli.web.app import build_app
from procctl.store.clock import to_stamp, utc_now

LOCAL = "http://127.0.0.1"
CLIENT = ("127.0.0.1", 50000)
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
       "form-action 'self'")


def _assert_headers(response: Any) -> None:
    where = f"{response.request.method} {response.request.url} -> {response.status_code}"
    assert response.headers.get("content-security-policy") == CSP, where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Procctl, str]]:
    """A home whose real agent ran samples/hello.toml once: (its Procctl, the ID)."""
    procctl = Procctl(tmp_path_factory.mktemp("server") / "home")
    try:
        ran = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json", "-p", "who=Ada")
        yield procctl, ran.json()["instance_id"]
    finally:
        procctl.stop_agent()


def _app(procctl: Procctl, token: str = "the-token") -> Any:
    app = build_app(HomePaths.resolve(procctl.home), token)

    async def posted(request: Request) -> Response:  # an action, whatever it does
        return PlainTextResponse("done")

    async def broken(request: Request) -> Response:
        raise RuntimeError("a route that fails")

    app.add_route("/test/post", posted, methods=["POST"])
    app.add_route("/test/broken", broken)
    return app


def _client(app: Any, **kwargs: Any) -> TestClient:
    return TestClient(app, **{"base_url": LOCAL, "client": CLIENT, **kwargs})


# --- the token ---------------------------------------------------------------------


def test_a_page_needs_the_token_and_the_first_visit_sets_the_cookie(
        made: tuple[Procctl, str]) -> None:
    procctl, _ = made
    with _client(_app(procctl)) as client:
        for path in ("/", "/events", "/static/graph.js", "/no/such/page"):
            for query, cookies in (("", {}), ("?token=the-tokeN", {}), ("?token=", {}),
                                   ("", {"procctl_ui": "the-tokeN"})):
                client.cookies.clear()
                for name, value in cookies.items():
                    client.cookies.set(name, value)
                response = client.get(f"{path}{query}")
                where = f"GET {path}{query} {cookies}"
                assert response.status_code == 403, where
                assert response.text == security.NO_TOKEN, where
                assert "set-cookie" not in response.headers, where
                _assert_headers(response)

        client.cookies.clear()
        first = client.get("/?token=the-token")
        assert first.status_code == 200, first.text
        assert first.headers["set-cookie"] == (
            "procctl_ui=the-token; HttpOnly; SameSite=Strict; Path=/")
        assert first.headers["cache-control"] == "no-store"
        # the cookie opens the pages; a visit with it sets it no more
        again = client.get("/")
        assert again.status_code == 200, again.text
        assert "set-cookie" not in again.headers
        script = client.get("/static/graph.js")
        assert script.status_code == 200
        assert "cache-control" not in script.headers  # static files may be cached

    with _client(_app(procctl)) as client:  # the header alone, no cookie
        response = client.get("/", headers={"X-Procctl-Token": "the-token"})
        assert response.status_code == 200
        assert "set-cookie" not in response.headers


def test_a_post_needs_the_token_header_and_this_servers_origin(
        made: tuple[Procctl, str]) -> None:
    procctl, _ = made
    token = {"X-Procctl-Token": "the-token"}
    with _client(_app(procctl)) as client:
        assert client.get("/?token=the-token").status_code == 200  # the cookie is set
        for headers, url, refusal in (
                ({"Origin": LOCAL}, "/test/post", security.NO_HEADER_TOKEN),
                ({"Origin": LOCAL}, "/test/post?token=the-token", security.NO_HEADER_TOKEN),
                ({"X-Procctl-Token": "the-tokeN", "Origin": LOCAL}, "/test/post",
                 security.NO_HEADER_TOKEN),
                (token, "/test/post", security.OTHER_ORIGIN),
                ({**token, "Origin": "null"}, "/test/post", security.OTHER_ORIGIN),
                ({**token, "Origin": "http://evil.example"}, "/test/post",
                 security.OTHER_ORIGIN),
                ({**token, "Origin": f"{LOCAL}:1"}, "/test/post", security.OTHER_ORIGIN),
                ({**token, "Origin": "https://127.0.0.1"}, "/test/post",
                 security.OTHER_ORIGIN)):
            response = client.post(url, headers=headers)
            assert (response.status_code, response.text) == (403, refusal), (headers, url)
            _assert_headers(response)
        sent = client.post("/test/post", headers={**token, "Origin": LOCAL})
        assert (sent.status_code, sent.text) == (200, "done")
        _assert_headers(sent)


def test_only_loopback_clients_naming_this_machine_are_served(
        made: tuple[Procctl, str]) -> None:
    procctl, _ = made
    app = _app(procctl)
    for client, allowed in ((CLIENT, True), (("::1", 1), True), (("::ffff:127.0.0.1", 1), True),
                            (("127.8.9.10", 1), True), (("10.1.2.3", 1), False),
                            (("::ffff:10.1.2.3", 1), False), (("testclient", 1), False),
                            (("192.168.1.20", 1), False)):
        with _client(app, client=client) as http:
            response = http.get("/?token=the-token")
            expected = (200, None) if allowed else (403, security.NOT_LOOPBACK)
            assert (response.status_code, None if allowed else response.text) == expected, client
            posted = http.post("/test/post", headers={"X-Procctl-Token": "the-token",
                                                      "Origin": LOCAL})
            assert posted.status_code == (200 if allowed else 403), client
    # DNS rebinding: another site's name resolved to 127.0.0.1 is still another host
    for base, allowed in (("http://localhost:8123", True), ("http://127.0.0.1:8123", True),
                          ("http://[::1]:8123", True), ("http://evil.example:8123", False),
                          ("http://127.0.0.1.evil.example", False)):
        with _client(app, base_url=base) as http:
            response = http.get("/?token=the-token")
            expected = (200, None) if allowed else (403, security.BAD_HOST)
            assert (response.status_code, None if allowed else response.text) == expected, base
            posted = http.post("/test/post", headers={"X-Procctl-Token": "the-token",
                                                      "Origin": base})
            assert posted.status_code == (200 if allowed else 403), base


def test_every_response_carries_the_security_headers(made: tuple[Procctl, str]) -> None:
    procctl, _ = made
    with _client(_app(procctl), raise_server_exceptions=False) as client:
        client.get("/?token=the-token")
        for method, path, status in (("GET", "/", 200), ("GET", "/no/such/page", 404),
                                     ("GET", "/static/no-such.js", 404),
                                     ("GET", "/test/post", 405), ("GET", "/test/broken", 500),
                                     ("GET", "/events?since=nonsense", 400)):
            response = client.request(method, path)
            assert response.status_code == status, (path, response.text)
            _assert_headers(response)
        failed = client.get("/test/broken")
        assert "a route that fails" not in failed.text  # no traceback in the page


# --- events ------------------------------------------------------------------------


def test_events_start_at_a_given_time_and_refuse_one_that_is_not(
        made: tuple[Procctl, str]) -> None:
    procctl, instance_id = made
    with _client(_app(procctl)) as client:
        client.get("/?token=the-token")
        refused = client.get("/events?since=yesterday")
        assert refused.status_code == 400
        assert refused.text.startswith("since='yesterday' is not a time"), refused.text
        # from before the instance: the stream's first event is it
        with client.stream("GET", "/events", params={"since": "2000-01-01T00:00:00+00:00"}
                           ) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            _assert_headers(stream)
            event = _next_event(stream.iter_lines(), "instance")
    assert event["event"] == "instance"
    summary = json.loads(event["data"])
    assert (summary["instance_id"], summary["status"]) == (instance_id, "completed")
    assert summary["result"] == {"greeting": "Hello, Ada!", "letters": 3}
    assert event["id"] >= summary["ended_at"]  # where a reconnection goes on from


def _next_event(lines: Iterator[str], kind: str, timeout: float = 10) -> dict[str, str]:
    """The next event of `kind` in an event stream's lines (fields by name)."""
    deadline = time.monotonic() + timeout
    fields: dict[str, str] = {}
    for line in lines:
        if time.monotonic() > deadline:
            break
        if not line:
            if fields.get("event") == kind:
                return fields
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(": ")
            fields[name] = value
    raise AssertionError(f"no {kind} event within {timeout}s")


def test_the_events_cursor_sends_each_change_once_and_late_commits_too(
        made: tuple[Procctl, str]) -> None:
    procctl, instance_id = made
    home = HomePaths.resolve(procctl.home)
    cursor = events.Cursor("2000-01-01T00:00:00+00:00")
    first = events.read_home(home, cursor.read)
    assert [s["instance_id"] for s in first] == [instance_id]
    assert events.read_home(home, cursor.read) == []  # nothing moved

    # a second run: only it comes
    ran = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
    changed = events.read_home(home, cursor.read)
    assert [s["instance_id"] for s in changed] == [ran["instance_id"]]

    # a row committed after a newer one was sent, stamped a second before it: sent
    late = to_stamp(events.datetime.fromisoformat(cursor.high) - events.timedelta(seconds=1))
    db = sqlite3.connect(procctl.home / "procctl.db")
    try:
        with db:
            db.execute("UPDATE instances SET updated_at = ? WHERE id = ?", (late, instance_id))
    finally:
        db.close()
    again = events.read_home(home, cursor.read)
    assert [s["instance_id"] for s in again] == [instance_id]
    assert events.read_home(home, cursor.read) == []


@pytest.mark.postgres
def test_the_events_cursor_reads_a_postgresql_store(
        tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    procctl = Procctl(tmp_path / "home")
    procctl.env["PROCCTL_STORE_URL"] = pg_url
    monkeypatch.setenv("PROCCTL_STORE_URL", pg_url)  # for this process's reads
    try:
        first = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
        home = HomePaths.resolve(procctl.home)
        cursor = events.Cursor("2000-01-01T00:00:00+00:00")
        sent = events.read_home(home, cursor.read)
        assert [(s["instance_id"], s["status"]) for s in sent] == [
            (first["instance_id"], "completed")]
        second = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
        assert [s["instance_id"] for s in events.read_home(home, cursor.read)] == [
            second["instance_id"]]
        assert events.read_home(home, cursor.read) == []
        assert not home.db.exists()  # read from the server, not a file
    finally:
        procctl.stop_agent()


def test_the_events_of_a_home_without_a_store_say_so_and_go_on() -> None:
    import asyncio

    async def first(home: HomePaths, count: int) -> list[str]:
        stream = events.stream(home, events.Cursor(utc_now()), poll=0.01)
        chunks = [await anext(stream) for _ in range(count)]
        await stream.aclose()
        return chunks

    def run(awaitable: Coroutine[Any, Any, list[str]]) -> list[str]:
        """Run in a thread of its own: Playwright's sync API, which other tests of this
        process use, leaves an event loop running in this one."""
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, awaitable).result()

    home = HomePaths.resolve(Path("/nonexistent") / unique_key())
    retry, problem = run(first(home, 2))
    assert retry == f"retry: {events.RETRY_MS}\n\n"
    assert problem.startswith("event: problem\ndata: "), problem
    assert str(home.home) in json.loads(problem.split("data: ", 1)[1])["message"]
    # said once: the stream goes on reading without saying it again
    with pytest.raises(TimeoutError):
        run(asyncio.wait_for(first(home, 3), timeout=0.3))


# --- procctl ui, the real process ----------------------------------------------------


def test_procctl_ui_serves_its_home_with_the_token_on_loopback_only(
        made: tuple[Procctl, str], tmp_path: Path) -> None:
    from ui.kit import start_ui

    procctl, instance_id = made
    ui = start_ui(procctl, tmp_path / "ui")
    try:
        printed = ui.out.read_text()
        assert printed.splitlines()[-1] == ui.url, printed
        assert len(ui.token) >= 40, ui.token  # secrets.token_urlsafe(32)

        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{ui.origin}/", timeout=10)
        assert refused.value.code == 403
        assert refused.value.headers["Content-Security-Policy"] == CSP

        with urllib.request.urlopen(ui.url, timeout=10) as page:
            assert page.status == 200
            assert page.headers["Content-Security-Policy"] == CSP
            assert page.headers["X-Content-Type-Options"] == "nosniff"
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert page.headers["Set-Cookie"].startswith(f"procctl_ui={ui.token};")
            page.read()

        # listening on 127.0.0.1 alone: not on any other address of this host
        for address in _other_addresses():
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as attempt:
                attempt.settimeout(2)
                assert attempt.connect_ex((address, ui.port)) != 0, address

        # the live events: an instance the agent runs now comes on the open stream
        request = urllib.request.Request(f"{ui.origin}/events",
                                         headers={"X-Procctl-Token": ui.token})
        with urllib.request.urlopen(request, timeout=10) as stream:
            assert stream.headers["Content-Type"].startswith("text/event-stream")
            ran = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json",
                             "-p", "who=Bo").json()
            lines = (raw.decode().rstrip("\n") for raw in stream)
            for _ in range(5):
                summary = json.loads(_next_event(lines, "instance")["data"])
                if summary["instance_id"] == ran["instance_id"]:
                    break
            assert summary["instance_id"] == ran["instance_id"], summary
            assert summary["instance_id"] != instance_id
            # Ctrl-C stops the server, with the stream still open
            started = time.monotonic()
            ui.proc.send_signal(signal.SIGINT)
            assert ui.proc.wait(timeout=10) == 0, ui.output()
            assert time.monotonic() - started < 5
    finally:
        ui.stop()
    assert "Traceback" not in ui.err.read_text(), ui.output()


def _other_addresses() -> list[str]:
    """This host's IPv4 address towards the outside, if it has one (a UDP connect sends
    nothing)."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
    except OSError:
        return []
    return [] if address.startswith("127.") else [address]


def test_a_port_in_use_is_one_error_line(procctl: Procctl) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = procctl("ui", "--port", str(port), timeout=30)
    assert result.code == 2, str(result)
    assert result.err.splitlines() == [
        f"Error: port {port} of 127.0.0.1 is in use",
        "Hint: give another --port, or none for a free one"], str(result)
    assert result.out == "", str(result)


def test_without_the_ui_extra_procctl_ui_says_what_to_install(
        procctl: Procctl, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text("import sys\nsys.modules['uvicorn'] = None\n",
                                           encoding="utf-8")
    result = procctl("ui", env={"PYTHONPATH": str(site)}, timeout=30)
    assert result.code == 2, str(result)
    assert result.err.splitlines() == [
        "Error: procctl ui needs the ui extra: uvicorn is not installed",
        "Hint: pip install 'procctl[ui]'"], str(result)
    helped = procctl("ui", "--help", env={"PYTHONPATH": str(site)})
    assert helped.code == 0 and "--port" in helped.out, str(helped)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_procctl_ui_serves_on_the_port_given_and_opens_the_browser(
        procctl: Procctl, tmp_path: Path) -> None:
    from ui.kit import start_ui

    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf %s "$1" > {opened}\n', encoding="utf-8")
    browser.chmod(0o755)
    procctl.env["BROWSER"] = str(browser)  # what Python's webbrowser runs first
    port = _free_port()
    ui = start_ui(procctl, tmp_path / "ui", "--port", str(port), "--open")
    try:
        assert ui.port == port
        with urllib.request.urlopen(ui.url, timeout=10) as page:
            assert page.status == 200
        shown = wait_for(lambda: opened.exists() and opened.read_text(), timeout=10,
                         message="the browser to be opened")
        assert shown == ui.url
    finally:
        ui.stop()
    assert ui.proc.returncode == 0, ui.output()
    # a home that does not exist yet is said, not refused
    assert "No procctl home at" in ui.err.read_text(), ui.output()
