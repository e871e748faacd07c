"""The web view is safe on a shared machine: nothing is served without the token or to a
non-loopback address, every POST needs the token in a header (not the cookie alone) and
the server's own Origin, every response carries the CSP and its companions, and values
from a process are shown as text: no dialog, no request, no link they make.

Against a real `procctl ui` process on a home with a real agent (conftest.py).
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from helpers import instance_state, unique_key, wait_for
from ui.kit import CSP, UiHome, Watched, screenshot

PAGES = ("/", "/paused", "/signals", "/definitions")


def _wrong(token: str) -> str:
    """`token` with its first character changed: right length, wrong value."""
    return ("y" if token.startswith("x") else "x") + token[1:]


def _client(**kwargs: Any) -> httpx.Client:
    return httpx.Client(timeout=10, follow_redirects=False, **kwargs)


def _assert_headers(response: httpx.Response) -> None:
    where = f"{response.request.method} {response.request.url.path} -> {response.status_code}"
    assert response.headers.get("content-security-policy") == CSP, where
    assert response.headers.get("x-content-type-options") == "nosniff", where
    assert response.headers.get("referrer-policy") == "no-referrer", where


# --- the token ---------------------------------------------------------------------


def test_nothing_is_served_without_the_token_or_with_a_wrong_one(ui_home: UiHome) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    paths = [*PAGES, f"/instances/{made['id']}", "/events"]
    wrong = _wrong(ui.token)
    with _client() as client:
        for path in paths:
            for query, cookies in (("", {}), (f"?token={wrong}", {}), ("?token=", {}),
                                   ("", {"procctl_ui": wrong}), ("", {"procctl_ui": ""})):
                client.cookies.clear()
                client.cookies.update(cookies)
                response = client.get(f"{ui.origin}{path}{query}")
                where = f"GET {path}{query} cookies={cookies} -> {response.status_code}"
                assert response.status_code in (401, 403), where
                assert made["id"] not in response.text, where
                assert made["order"] not in response.text, where
                assert "procctl_ui" not in response.headers.get("set-cookie", ""), where
                _assert_headers(response)


def test_a_page_asked_for_under_another_host_name_is_refused(ui_home: UiHome) -> None:
    """DNS rebinding: another site's name resolved to 127.0.0.1 reaches the port, with
    its own Host header; the token would not be known to it, but even with it: refused."""
    ui = ui_home.ui
    with _client() as client:
        for host in ("evil.example", f"evil.example:{ui.port}",
                     f"127.0.0.1.evil.example:{ui.port}"):
            response = client.get(ui.url, headers={"Host": host})
            assert response.status_code == 403, (host, response.status_code)
            _assert_headers(response)
        assert client.get(ui.url, headers={"Host": f"localhost:{ui.port}"}).status_code == 200


def test_the_token_sets_a_strict_http_only_cookie_that_opens_the_pages(
        ui_home: UiHome) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    with _client() as client:
        first = client.get(ui.url)
        assert first.status_code == 200, first.text[:500]
        cookie = first.headers.get("set-cookie", "")
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert cookie.startswith("procctl_ui="), cookie
        assert {"httponly", "path"} <= attributes, cookie
        assert "samesite=strict" in cookie.lower().replace(" ", ""), cookie
        assert "path=/;" in cookie.lower().replace(" ", "") + ";", cookie
        # the cookie alone now opens the pages, the instance's among them
        page = client.get(f"{ui.origin}/instances/{made['id']}")
        assert page.status_code == 200, page.text[:500]
        assert made["order"] in page.text
        # and the page holds the token for its own fetches
        assert f'name="procctl-token" content="{ui.token}"' in page.text
        for path in PAGES:
            response = client.get(f"{ui.origin}{path}")
            assert response.status_code == 200, f"{path}: {response.text[:300]}"
            _assert_headers(response)


def test_every_response_carries_the_csp_nosniff_and_no_referrer(ui_home: UiHome) -> None:
    ui = ui_home.ui
    with _client() as client:
        page = client.get(ui.url)
        _assert_headers(page)
        scripts = [src for src in _attribute_values(page.text, "script", "src")]
        assert scripts, "the page loads no script of its own"
        for src in scripts:
            assert src.startswith("/static/"), f"script from elsewhere: {src}"
            script = client.get(f"{ui.origin}{src}")
            assert script.status_code == 200, src
            _assert_headers(script)
        _assert_headers(client.get(f"{ui.origin}/instances/no-such-instance"))
        _assert_headers(client.get(f"{ui.origin}/no/such/page"))
        _assert_headers(client.post(f"{ui.origin}/api/cancel", json={}))


def _attribute_values(html: str, tag: str, attribute: str) -> list[str]:
    from html.parser import HTMLParser

    found: list[str] = []

    class Finder(HTMLParser):
        def handle_starttag(self, name: str, attrs: list[tuple[str, str | None]]) -> None:
            if name == tag:
                found.extend(value for key, value in attrs if key == attribute and value)

    Finder().feed(html)
    return found


def test_the_page_has_no_inline_script_and_fetches_nothing_from_the_internet(
        ui_home: UiHome) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    with _client() as client:
        client.get(ui.url)
        for path in (*PAGES, f"/instances/{made['id']}"):
            html = client.get(f"{ui.origin}{path}").text
            lowered = html.lower()
            assert "<script>" not in lowered and "<script type" not in lowered, path
            for tag, attribute in (("script", "src"), ("link", "href"), ("img", "src")):
                for value in _attribute_values(html, tag, attribute):
                    assert not value.startswith(("http:", "https:", "//")), (path, value)


# --- actions -----------------------------------------------------------------------


def test_a_post_needs_the_token_header_and_the_servers_own_origin(ui_home: UiHome) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    body = {"instance_id": made["id"], "reason": "security test"}
    header = {"X-Procctl-Token": ui.token}
    refused = [
        ("cookie alone, own origin", {"Origin": ui.origin}),
        ("wrong token in the header", {"X-Procctl-Token": _wrong(ui.token),
                                       "Origin": ui.origin}),
        ("token as a query parameter only", {"Origin": ui.origin}),
        ("another origin", {**header, "Origin": "http://evil.example"}),
        ("another port", {**header, "Origin": "http://127.0.0.1:1"}),
        ("no origin", header),
        ("null origin", {**header, "Origin": "null"}),
    ]
    with _client() as client:
        client.get(ui.url)  # the cookie: refused all the same
        assert "procctl_ui" in client.cookies
        for what, headers in refused:
            url = f"{ui.origin}/api/cancel"
            if what.startswith("token as a query"):
                url += f"?token={ui.token}"
            for path in ("/api/cancel", "/api/retry", "/api/resume"):
                response = client.post(url.replace("/api/cancel", path), json=body,
                                       headers=headers)
                assert response.status_code == 403, f"{what} {path}: {response.status_code}"
                _assert_headers(response)
        assert instance_state(ui_home.procctl, made["id"])[0] == "paused"
        # the same request, as the page sends it, does cancel (so the refusals above
        # were refusals, not a broken route)
        response = client.post(f"{ui.origin}/api/cancel", json=body,
                               headers={**header, "Origin": ui.origin})
        assert response.status_code == 200, response.text
    wait_for(lambda: instance_state(ui_home.procctl, made["id"])[0] == "cancelled",
             timeout=10, message="the instance to be cancelled")


def test_resume_with_a_field_of_the_wrong_type_is_refused_by_the_server(
        ui_home: UiHome) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    headers = {"X-Procctl-Token": ui.token, "Origin": ui.origin}
    correlation_id = f"approval-{made['order']}"
    with _client() as client:
        for payload, field in (({"approved": "yes"}, "approved"), ({"by": "ada"}, "approved"),
                               ({"approved": True, "by": 7}, "by")):
            response = client.post(f"{ui.origin}/api/resume", headers=headers,
                                   json={"correlation_id": correlation_id, "payload": payload})
            assert response.status_code == 400, f"{payload}: {response.text}"
            assert field in response.text, f"{payload}: {response.text}"
        assert instance_state(ui_home.procctl, made["id"])[0] == "paused"
        response = client.post(f"{ui.origin}/api/resume", headers=headers, json={
            "correlation_id": correlation_id, "payload": {"approved": True, "by": "ada"}})
        assert response.status_code == 200, response.text
    wait_for(lambda: instance_state(ui_home.procctl, made["id"])[0] == "completed",
             timeout=10, message="the instance to complete")


EVIL = """<!doctype html>
<html><body><h1>another site</h1>
<form id="form" method="post" action="{origin}/api/cancel" enctype="text/plain">
<input type="hidden" name='{{"instance_id": "{instance_id}", "reason": "evil", "x": "'
       value='"}}'>
</form>
<script>
fetch("{origin}/api/cancel", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}},
  body: JSON.stringify({{instance_id: "{instance_id}", reason: "evil"}})}})
  .finally(() => document.getElementById("form").submit());
</script></body></html>
"""


@contextmanager
def _site(html: str) -> Iterator[str]:
    """Another site on this machine (same host, another port): serves `html` at /."""
    body = html.encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_of_another_site_cannot_act_even_with_the_cookie(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    """The browser has the cookie (it opened the URL), and the other site is on the same
    host, so SameSite lets the cookie go with its form post and its fetch: both are
    refused (no token header, another Origin) and the instance stays paused."""
    made = ui_home.approval()
    ui = ui_home.ui
    page = watched.page
    page.goto(ui.url)
    with _site(EVIL.format(origin=ui.origin, instance_id=made["id"])) as evil:
        with page.expect_navigation(url=f"{ui.origin}/api/cancel"):
            page.goto(evil)
        screenshot(page, tmp_path, "other-site-refused")
        assert "Forbidden" in page.inner_text("body")
    refused = [line for line in watched.failed if line.endswith("/api/cancel")]
    assert refused and all(line.startswith("403 ") for line in refused), watched.failed
    assert instance_state(ui_home.procctl, made["id"])[0] == "paused"


def test_a_browser_without_the_token_gets_one_line_and_nothing_else(
        ui_home: UiHome, watched: Watched) -> None:
    made = ui_home.approval()
    ui = ui_home.ui
    page = watched.page
    for path in ("/", f"/instances/{made['id']}", "/paused"):
        response = page.goto(f"{ui.origin}{path}")
        assert response is not None and response.status == 403, path
        text = page.inner_text("body").strip()
        assert text.startswith("Forbidden:") and "\n" not in text, text
        assert made["id"] not in page.content()
    loaded = {url.split("?")[0] for url in watched.requests} - {f"{ui.origin}/favicon.ico"}
    assert loaded == {f"{ui.origin}/", f"{ui.origin}/instances/{made['id']}",
                      f"{ui.origin}/paused"}, loaded  # no script, no style, no event stream
    assert watched.dialogs == []


# --- the network -------------------------------------------------------------------


def _non_loopback_addresses() -> list[str]:
    """This host's addresses other than loopback: the ones it would send from to reach
    the outside (a UDP connect sends nothing) and those its name resolves to."""
    found: set[str] = set()
    for family, target in ((socket.AF_INET, "192.0.2.1"), (socket.AF_INET6, "2001:db8::1")):
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((target, 9))
                found.add(probe.getsockname()[0])
        except OSError:
            pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            found.add(str(info[4][0]))
    except OSError:
        pass
    return sorted(address for address in found
                  if not ipaddress.ip_address(address.split("%")[0]).is_loopback
                  and not ipaddress.ip_address(address.split("%")[0]).is_unspecified)


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on `port` (/proc/net/tcp{,6})."""
    found: set[str] = set()
    for name in ("tcp", "tcp6"):
        try:
            lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                if len(raw) == 4:
                    found.add(str(ipaddress.IPv4Address(raw[::-1])))
                else:  # four little-endian 32-bit words
                    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
                    found.add(str(ipaddress.IPv6Address(words)))
    return found


def _connects(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as attempt:
        attempt.settimeout(2)
        try:
            attempt.connect((address, port))
        except OSError:
            return False
        return True


def test_the_server_listens_on_loopback_only(ui_home: UiHome) -> None:
    ui = ui_home.ui
    listening = _listening_addresses(ui.port)
    assert listening == {"127.0.0.1"}, listening
    # each address is tried where a control server listening on all interfaces is
    # reached, so a refusal means procctl ui is not there, not that the address is dead
    tried = []
    for address in _non_loopback_addresses():
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as control:
            control.bind(("::" if family == socket.AF_INET6 else "0.0.0.0", 0))
            control.listen()
            if not _connects(address, control.getsockname()[1]):
                continue
        assert not _connects(address, ui.port), \
            f"procctl ui accepted a connection on {address}:{ui.port}"
        tried.append(address)
    if not tried:
        pytest.skip("this host has no reachable non-loopback address to try")


def test_a_request_from_a_non_loopback_client_is_refused(ui_home: UiHome) -> None:
    """Behind a proxy or a port forward the peer is not loopback: refused, token or not.
    (Starlette's test client presents itself as the host `testclient`.)"""
    from starlette.testclient import TestClient

    from procctl.agent.paths import HomePaths
    from procctl.cli.web.app import build_app

    token = f"t-{unique_key()}"
    app = build_app(HomePaths.resolve(ui_home.procctl.home), token)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        response = client.get(f"/?token={token}")
        assert response.status_code == 403, response.status_code
        response = client.post("/api/cancel", json={}, headers={
            "X-Procctl-Token": token, "Origin": "http://127.0.0.1"})
        assert response.status_code == 403, response.status_code
    with TestClient(app, base_url="http://127.0.0.1", client=("127.0.0.1", 50000)) as client:
        assert client.get(f"/?token={token}").status_code == 200


# --- values from a process are text ------------------------------------------------

HOSTILE = """
[process]
name = "hostile-{key}"
description = "<b>not bold</b>"

[process.params.note]
type = "str"
default = ""

[process.params.link]
type = "str"
default = ""

[[steps]]
id = "say"
task = "log"
with = {{ message = "{{{{ note }}}}" }}

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "hostile-{key} {{{{ note }}}}"
expects = {{ by = "str?" }}

[[steps]]
id = "done"
kind = "return"

[steps.value]
note = "{{{{ note }}}}"
link = "{{{{ link }}}}"
by = "{{{{ results.wait.payload.by }}}}"
"""
SCRIPT = "<script>alert('script')</script>"
IMAGE = '"><img src=x onerror=alert(\'img\')>'
LINK = "javascript:alert('link')"


def test_hostile_values_are_shown_as_text_do_nothing_and_still_resume(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    """Params, a log line, the correlation ID (made of a param) and a payload holding
    markup and a `javascript:` URL: shown as text on every page, no dialog, no request,
    no link; and the paused page's form resumes that very correlation ID."""
    key = unique_key()
    definition = tmp_path / "hostile.toml"
    definition.write_text(HOSTILE.format(key=key), encoding="utf-8")
    note = f"{SCRIPT} {IMAGE}"
    made = ui_home.paused(definition, f"note={note}", f"link={LINK}")
    correlation_id = f"hostile-{key} {note}"
    ui = ui_home.ui
    page = watched.page

    page.goto(ui.at(f"/instances/{made['id']}"))
    page.locator(".graph svg").wait_for()
    text = page.inner_text("body")
    assert SCRIPT in text and IMAGE in text and LINK in text, text[:3000]
    _assert_inert(page, "instance page")
    screenshot(page, tmp_path, "hostile-instance")
    page.locator("a[href^='/definitions/']").first.click()
    page.locator(".graph svg").wait_for()
    assert "<b>not bold</b>" in page.inner_text("body")
    _assert_inert(page, "definition page")

    page.goto(f"{ui.origin}/")
    page.wait_for_load_state("load")
    _assert_inert(page, "instances page")

    page.goto(f"{ui.origin}/paused")
    row = page.locator(f"tr[data-instance-id='{made['id']}']")
    assert row.locator(".correlation-id").inner_text().strip() == correlation_id
    _assert_inert(page, "paused page")
    row.locator("details summary").click()
    row.locator("form.resume-form [name='by']").fill(IMAGE)
    row.locator("form.resume-form button.resume").click()
    wait_for(lambda: instance_state(ui_home.procctl, made["id"])[0] == "completed",
             timeout=10, message="the hostile instance to complete")
    _assert_inert(page, "paused page after the resume")
    screenshot(page, tmp_path, "hostile-paused")

    page.goto(f"{ui.origin}/instances/{made['id']}")
    result = page.locator("pre.result").inner_text()
    assert IMAGE in result and LINK in result and SCRIPT in result, result
    _assert_inert(page, "completed instance")
    assert watched.dialogs == [], watched.dialogs
    strays = [url for url in watched.requests if not url.startswith(ui.origin)
              or url.split("?")[0].rstrip("/").endswith("/x") or "javascript:" in url]
    assert strays == [], strays
    assert watched.problems() == [], watched.problems()


def _assert_inert(page: Any, where: str) -> None:
    """No element, attribute or link made of the hostile values."""
    assert page.locator("img[src='x'], img[onerror]").count() == 0, where
    assert page.locator("a[href^='javascript:' i]").count() == 0, where
    assert page.locator("b", has_text="not bold").count() == 0, where
    inline = page.evaluate(
        "() => [...document.scripts].filter(s => !s.src).map(s => s.textContent)")
    assert inline == [], (where, inline)
