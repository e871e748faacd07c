"""The web view's pages (cli/web/pages.py) through Starlette's TestClient, against a real
store filled by a real agent (samples/approval.toml paused, with params that hold markup;
hello completed; a checkpoint without `expects`), and a store of many rows written
quickly for the paging: each page renders, filters and keyset pages work, values from a
process show as text, the paused page's resume form has the fields of `expects`.
"""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import markupsafe
import pytest
from helpers import SAMPLES, Procctl, run_paused, unique_key, wait_for

pytest.importorskip("starlette", reason="the web view needs starlette: pip install "
                                        "'procctl[ui]'")
pytest.importorskip("httpx", reason="Starlette's TestClient needs httpx")

from starlette.testclient import TestClient

from procctl.agent.paths import HomePaths
from procctl.cli.web import pages

TOKEN = "test-token-" + "x" * 20
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(2)>'

#: a checkpoint that declares nothing: its fields are those later steps read (type any)
GATE = """
[process]
name = "gate-{key}"

[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "gate-{key}"

[[steps]]
id = "done"
kind = "return"
value = "{{{{ results['gate'].payload.note }}}}"
"""

LEAF = """
[process]
name = "leaf-{key}"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "leaf-{key}"
expects = {{ answer = "int" }}

[[steps]]
id = "answer"
kind = "return"
value = "{{{{ results['wait'].payload.answer }}}}"
"""

PARENT = """
[process]
name = "top-{key}"

[[steps]]
id = "ask"
kind = "call"
file = "leaf.toml"
"""

FAILING = """
[process]
name = "failing-{key}"

[[steps]]
id = "boom"
kind = "throw"
message = "no lines <b>bold</b>"
"""


def build(home: Path) -> Any:
    """The app as `procctl ui` builds it (cli/web/app.py) when it is there; else the
    pages alone (with the static files), for this file to test them."""
    try:
        from procctl.cli.web.app import build_app
    except ImportError:
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        app = Starlette(routes=[*pages.ROUTES, Mount(
            "/static", StaticFiles(directory=Path(pages.__file__).parent / "static"))])
        app.state.home = HomePaths.resolve(home)
        app.state.token = TOKEN
        return app
    return build_app(HomePaths.resolve(home), TOKEN)


def client(home: Path) -> TestClient:
    """A browser on this machine, with the token (as every request needs it)."""
    return TestClient(build(home), base_url="http://127.0.0.1", client=("127.0.0.1", 50000),
                      headers={"X-Procctl-Token": TOKEN})


@dataclass
class Home:
    procctl: Procctl
    web: TestClient
    hostile: str  # paused approval, its order a <script>
    plain: str  # paused approval
    completed: str  # hello
    gate: str  # paused at a checkpoint without expects
    parent: str  # paused at a call of leaf
    leaf: str  # the child, paused at its checkpoint
    failed: str  # failed at a throw
    key: str


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Home]:
    folder = tmp_path_factory.mktemp("pages")
    procctl = Procctl(folder / "home")
    key = unique_key()
    gate_file = folder / "gate.toml"
    gate_file.write_text(GATE.format(key=key), encoding="utf-8")
    for name, text in (("leaf", LEAF), ("parent", PARENT), ("failing", FAILING)):
        (folder / f"{name}.toml").write_text(text.format(key=key), encoding="utf-8")
    try:
        hostile = run_paused(procctl, SAMPLES / "approval.toml", "-p", f"order={SCRIPT}",
                             "-p", "amount=1200")
        plain = run_paused(procctl, SAMPLES / "approval.toml", "-p", f"order=P-{key}")
        completed = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json",
                               "-p", f"who={IMG}").json()
        gate = run_paused(procctl, gate_file)
        parent = run_paused(procctl, folder / "parent.toml")
        failed = procctl("run", folder / "failing.toml", "--wait", "--json").json()
        assert failed["status"] == "failed", failed
        with client(procctl.home) as web:
            yield Home(procctl, web, hostile["instance_id"], plain["instance_id"],
                       completed["instance_id"], gate["instance_id"],
                       parent["instance_id"], parent["waiting_for"]["child_id"],
                       failed["instance_id"], key)
    finally:
        procctl.stop_agent()


def ids(page: str, table: str) -> list[str]:
    """The instance IDs of a table's rows, in order."""
    body = page.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr data-instance-id="([^"]+)"', body)


def next_link(page: str) -> str | None:
    found = re.search(r'<a class="next-page" href="([^"]+)"', page)
    return None if found is None else html.unescape(found.group(1))


def form_fields(page: str, correlation_id: str) -> dict[str, tuple[str, str]]:
    """The resume form of `correlation_id`: its fields' names -> (type, optional)."""
    start = page.index(f'data-correlation-id="{escape(correlation_id)}"')
    form = page[start:page.index("</form>", start)]
    return {name: (kind, optional) for name, kind, optional in re.findall(
        r'name="([^"]+)" data-type="([^"]+)" data-optional="([^"]+)"', form)}


def escape(text: str) -> str:
    """Text as the autoescaped templates write it."""
    return str(markupsafe.escape(text))


def get(home: Home, url: str, status: int = 200) -> str:
    response = home.web.get(url)
    assert response.status_code == status, (url, response.status_code, response.text[-800:])
    return response.text


# -- every page -------------------------------------------------------------------------


def test_every_page_renders_with_the_token_for_its_scripts(filled: Home) -> None:
    for url in ("/", "/paused", "/signals", "/definitions", f"/instances/{filled.plain}",
                f"/instances/{filled.completed}"):
        page = get(filled, url)
        assert f'<meta name="procctl-token" content="{TOKEN}">' in page, url
        assert '<script src="/static/app.js" defer></script>' in page, url
        assert "<script>" not in page, url  # no inline script: the CSP forbids it
    assert filled.web.get("/static/app.js").status_code == 200
    assert filled.web.get("/static/app.css").status_code == 200


def test_the_instances_page_lists_newest_first(filled: Home) -> None:
    page = get(filled, "/")
    assert ids(page, "instances") == [filled.failed, filled.leaf, filled.parent, filled.gate,
                                      filled.completed, filled.plain, filled.hostile]
    row = page.split(f'data-instance-id="{filled.completed}"', 1)[1].split("</tr>", 1)[0]
    assert 'data-status="completed"' in row and f'href="/instances/{filled.completed}"' in row


def test_values_from_a_process_are_text_never_markup(filled: Home) -> None:
    for url in ("/", "/paused", f"/instances/{filled.hostile}",
                f"/instances/{filled.completed}"):
        page = get(filled, url)
        assert SCRIPT not in page and "<img" not in page, url
    page = get(filled, f"/instances/{filled.hostile}")
    assert escape(SCRIPT) in page  # the param, as text
    paused = get(filled, "/paused")
    assert escape(f"approval-{SCRIPT}") in paused  # its correlation ID too
    done = get(filled, f"/instances/{filled.completed}")
    assert escape(IMG) in done


def test_the_instance_page_shows_status_graph_history_and_actions(filled: Home) -> None:
    page = get(filled, f"/instances/{filled.plain}")
    assert f'<div id="instance" data-instance-id="{filled.plain}"' in page
    assert 'id="status" class="status status-paused" data-status="paused"' in page
    assert "it waits for a signal to correlation ID approval-P-" in page  # explain's reason
    graph = page.split('<pre class="mermaid-source">', 1)[1].split("</pre>", 1)[0]
    assert graph.startswith("flowchart") and re.search(r"class n\w+ current", graph)
    assert re.search(r'<tr data-event-id="\d+" class="event-checkpoint', page) or \
        'class="event-instance_paused"' in page
    assert form_fields(page, f"approval-P-{filled.key}") == {
        "approved": ("bool", "no"), "by": ("str", "yes")}
    assert 'class="cancel danger"' in page and 'class="retry"' not in page
    assert "Stored variables" in page and escape('"amount": 100') in page

    done = get(filled, f"/instances/{filled.completed}")
    assert 'data-status="completed"' in done and "resume-form" not in done
    assert 'class="cancel' not in done
    assert '<pre class="value result">' in done and "Hello" in done


def test_the_history_route_gives_the_events_after_one(filled: Home) -> None:
    every = filled.web.get(f"/instances/{filled.plain}/history").json()
    assert every["status"] == "paused" and len(every["events"]) >= 3
    first = every["events"][0]["id"]
    later = filled.web.get(f"/instances/{filled.plain}/history?after={first}").json()
    assert [e["id"] for e in later["events"]] == [e["id"] for e in every["events"][1:]]
    assert filled.web.get(f"/instances/{filled.plain}/history?after=x").status_code == 400
    assert filled.web.get("/instances/ffffffffffff/history").status_code == 404


def test_an_unknown_instance_or_definition_is_one_clear_line(filled: Home) -> None:
    page = get(filled, "/instances/ffffffffffff", 404)
    assert "no instance &#39;ffffffffffff&#39;" in page
    page = get(filled, "/definitions/" + "0" * 64, 404)
    assert "No definition" in page


def test_a_call_links_the_parent_and_its_child(filled: Home) -> None:
    parent = get(filled, f"/instances/{filled.parent}")
    waiting = parent.split("<dt>Waiting for</dt>", 1)[1].split("</dd>", 1)[0]
    assert f'<a href="/instances/{filled.leaf}">{filled.leaf}</a>' in waiting
    children = parent.split("<dt>Children</dt>", 1)[1].split("</dd>", 1)[0]
    assert f'href="/instances/{filled.leaf}"' in children
    assert "resume-form" not in parent  # the child is the one to resume
    child = get(filled, f"/instances/{filled.leaf}")
    assert f'<dt>Parent</dt><dd><a href="/instances/{filled.parent}">' in child
    assert form_fields(child, f"leaf-{filled.key}") == {"answer": ("int", "no")}
    paused = get(filled, "/paused")
    row = paused.split(f'<tr data-instance-id="{filled.parent}"', 1)[1].split("</tr>", 1)[0]
    assert "waits for child" in row and "resume-form" not in row


def test_a_failed_instance_offers_a_retry_and_marks_where_it_failed(filled: Home) -> None:
    page = get(filled, f"/instances/{filled.failed}")
    assert 'data-status="failed"' in page
    assert 'class="retry" data-instance-id="' + filled.failed + '"' in page
    assert 'class="cancel' not in page and "resume-form" not in page
    graph = page.split('<pre class="mermaid-source">', 1)[1].split("</pre>", 1)[0]
    assert re.search(r"class n\w+ failed", graph)
    assert "<b>bold</b>" not in page and escape("no lines <b>bold</b>") in page


# -- paused -----------------------------------------------------------------------------


def test_the_paused_page_has_a_resume_form_from_expects(filled: Home) -> None:
    page = get(filled, "/paused")
    shown = ids(page, "paused")
    assert shown[2:] == [filled.gate, filled.plain, filled.hostile]
    assert set(shown[:2]) == {filled.parent, filled.leaf}
    assert form_fields(page, f"approval-P-{filled.key}") == {
        "approved": ("bool", "no"), "by": ("str", "yes")}
    # no `expects`: the fields later steps read, of any type
    assert form_fields(page, f"gate-{filled.key}") == {"note": ("any", "no")}
    # the TTL counts down in the page (7 days)
    assert re.search(r'<time class="countdown" datetime="[^"]+"></time>', page)
    only = get(filled, f"/paused?process=gate-{filled.key}")
    assert ids(only, "paused") == [filled.gate]


# -- filters and pages ------------------------------------------------------------------


def test_the_instances_filters(filled: Home) -> None:
    assert ids(get(filled, "/?status=completed"), "instances") == [filled.completed]
    assert ids(get(filled, "/?process=approval"), "instances") == [filled.plain,
                                                                   filled.hostile]
    assert ids(get(filled, "/?correlation_id=" + f"approval-P-{filled.key}"),
               "instances") == [filled.plain]
    assert ids(get(filled, "/?correlation_id=nobody"), "instances") == []
    assert ids(get(filled, "/?since=1h&status=paused"), "instances") == [
        filled.leaf, filled.parent, filled.gate, filled.plain, filled.hostile]
    assert ids(get(filled, "/?until=1h"), "instances") == []
    assert "No instances match these filters." in get(filled, "/?until=1h")
    assert "status &#39;bogus&#39; is not one of running" in get(filled, "/?status=bogus", 400)
    assert "neither a duration" in get(filled, "/?since=yesterday", 400)


def test_pages_go_by_key_through_every_instance(tmp_path: Path) -> None:
    from paused_rows import fill

    from procctl.store import Store

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    store = Store(home / "procctl.db")
    fill(store, 120, mixed=False)
    store.close()
    with client(home) as web:
        seen: list[str] = []
        url: str | None = "/?status=paused"
        pages_read = 0
        while url is not None:
            page = web.get(url).text
            rows = ids(page, "instances")
            assert len(rows) == (50 if pages_read < 2 else 20)
            seen += rows
            url = next_link(page)
            pages_read += 1
        assert pages_read == 3 and len(set(seen)) == 120
        started = [web.get(f"/instances/{i}/history").status_code for i in seen[:1]]
        assert started == [200]
        # a snapshot this procctl cannot read is said on the page, not a server error
        odd = web.get(f"/instances/{seen[0]}")
        assert odd.status_code == 200 and "its snapshot cannot be read" in odd.text

        paused: list[str] = []
        url = "/paused"
        while url is not None:
            page = web.get(url).text
            paused += ids(page, "paused")
            url = next_link(page)
        assert len(paused) == len(set(paused)) == 120
        # a definition this procctl cannot read: no fields known, a free payload
        assert 'name="payload" data-type="object"' in page


def test_the_first_page_is_quick_among_many_instances(tmp_path: Path) -> None:
    """Keyset pages and no count: the first and a later page cost about the same."""
    from paused_rows import fill

    from procctl.store import Store

    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    store = Store(home / "procctl.db")
    fill(store, 20_000, mixed=False)
    store.close()
    with client(home) as web:
        web.get("/")  # templates compiled
        took = []
        for url in ("/", "/?after=i0019000", "/paused", "/?process=p&status=paused"):
            start = time.monotonic()
            assert web.get(url).status_code == 200
            took.append(time.monotonic() - start)
        assert max(took) < 1.0, took


# -- signals and definitions ------------------------------------------------------------


def test_the_signals_page_shows_held_and_refused_signals(filled: Home) -> None:
    signals = filled.procctl.home / "signals"
    signals.mkdir(exist_ok=True)
    held = f"nobody-{filled.key}-{SCRIPT}"
    (signals / "held.tmp").write_text(json.dumps({"correlation_id": held, "payload": {}}))
    (signals / "held.tmp").rename(signals / "held.json")
    (signals / "broken.tmp").write_text("{not json")
    (signals / "broken.tmp").rename(signals / "broken.json")

    def shown() -> str | None:
        page = get(filled, "/signals")
        refused = page.partition('id="rejected-files"')[2]
        return page if escape(held) in page and "broken.json" in refused else None

    page = wait_for(shown, timeout=20, message="the signals on the signals page")
    assert SCRIPT not in page
    row = page.split(escape(held), 1)[0].rsplit("<tr", 1)[1]
    assert "held" in row
    refused = page.split('id="rejected-files"', 1)[1]
    assert "<code>broken.json</code>" in refused and "not JSON: Expecting" in refused


def test_the_definitions_pages(filled: Home) -> None:
    page = get(filled, "/definitions")
    shas = re.findall(r'<tr data-sha="([0-9a-f]{64})">', page)
    assert len(shas) == 6
    names = re.findall(r'<td class="process"><a href="/definitions/[0-9a-f]+">([^<]+)</a>',
                       page)
    assert sorted(names) == sorted(["approval", "hello", *(f"{name}-{filled.key}" for name in (
        "gate", "leaf", "top", "failing"))])
    approval = shas[names.index("approval")]
    one = get(filled, f"/definitions/{approval}")
    assert "wait-for-answer" in one and '<pre class="mermaid-source">flowchart' in one
    assert 'class="value definition-source"' in one
