"""The web view's graph: `graph_source` marks the step an instance stands at (or failed
at) on the definition's Mermaid flowchart, and the text stays a valid, safe flowchart."""

from __future__ import annotations

import html
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui.kit import CHROMIUM, CSP, LAUNCH_ARGS, unavailable
from unit.test_graph import CHILD, EVERY_KIND, check_mermaid

from procctl.agent.definition import Definition, load_definition, parse_definition
from procctl.agent.definition.graph import mermaid
from procctl.cli.web.graph import graph_source

REPO = Path(__file__).resolve().parents[2]


def approval() -> Definition:
    return load_definition(REPO / "samples" / "approval.toml")


def marked(text: str, mark: str) -> tuple[str, str]:
    """(node id, first label line) of the one node with class `mark`."""
    chart, problems = check_mermaid(text)
    # the checker knows classes on nodes only; Mermaid also styles a subgraph by class
    problems = [p for p in problems if not (
        p.startswith(f"class {mark}: s") and p.split()[2] in chart.subgraphs)]
    assert not problems, "\n".join(problems) + "\n\n" + text
    [node] = chart.classes[mark]
    title = chart.subgraphs.get(node) or chart.nodes[node]
    return node, title.split("\n")[0]


def test_the_paused_checkpoint_is_marked_current() -> None:
    text = graph_source(approval(), "wait-for-answer")
    assert marked(text, "current")[1] == "checkpoint wait-for-answer"
    assert "failed" not in check_mermaid(text)[0].classes
    # the drawing itself is the one `procctl graph` prints, plus the mark
    assert text.startswith(mermaid(approval()))


def test_a_failed_step_is_marked_failed() -> None:
    text = graph_source(approval(), "decide", failed=True)
    assert marked(text, "failed")[1] == "if decide"
    assert "current" not in check_mermaid(text)[0].classes


@pytest.mark.parametrize("step_id", [None, "no-such-step"])
def test_no_or_an_unknown_step_marks_nothing(step_id: str | None) -> None:
    assert graph_source(approval(), step_id) == mermaid(approval())


def test_every_kind_of_step_can_be_marked(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    path = tmp_path / "every-kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    definition = load_definition(path)
    for step in definition.all_steps():
        node, title = marked(graph_source(definition, step.id), "current")
        assert title.startswith(f"{step.kind} {step.id}"), (step.id, node, title)


def test_labels_cannot_break_out_or_inject() -> None:
    definition = parse_definition(
        '[process]\nname = "p"\n'
        '[[steps]]\nid = "fetch.data-1"\ntask = "log"\nwith = { message = "hi" }\n'
        '[[steps]]\nid = "t"\nkind = "throw"\n'
        'message = "\\"]; click n0 call alert(1) %% <script>alert(1)</script> '
        '\\"><img src=x onerror=alert(1)> end ; #quot; a\\nb"\n')
    text = graph_source(definition, "fetch.data-1")
    assert marked(text, "current")[1] == "task fetch.data-1 (log)"
    chart, _ = check_mermaid(text)
    [thrown] = [label for label in chart.nodes.values() if label.startswith("throw t")]
    # the message survives as text, line break and all; nothing of it is markup or syntax
    assert thrown == ('throw t\n"]; click n0 call alert(1) %% <script>alert(1)</script> '
                      '"><img src=x onerror=alert(1)> end ; #quot; a\nb')
    assert "<script" not in text and "<img" not in text and "fetch.data-1[" not in text
    assert not any(line.strip().startswith("click") for line in text.splitlines())


# --- graph.js with the bundled Mermaid, in real headless Chromium ---------------------------
# The page is served through Playwright's request routing with the web view's own
# Content-Security-Policy, so a script Mermaid needs that the policy forbids shows up here.

STATIC = REPO / "cli" / "web" / "static"
ORIGIN = "http://procctl.test"
EVIL = ('"]; click n0 call alert(1) %% <script>alert(1)</script> '
        '"><img src=x onerror=alert(1)> end ; #quot;')


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) under Playwright; skipped, or failing under CI=true,
    without them (the rule of tests/ui)."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        unavailable(f"Python Playwright is not installed ({exc}): pip install playwright")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                                  headless=True, args=LAUNCH_ARGS)
        except Error as exc:
            unavailable(f"{CHROMIUM} does not start under Playwright: {exc}")
        try:
            yield launched
        finally:
            launched.close()


def open_page(browser: Any, body: str) -> tuple[Any, list[str]]:
    """A page at ORIGIN with `body` and graph.js; returns it and the problems it reports
    (script errors, console errors, CSP violations, dialogs, requests off the origin)."""
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda msg: problems.append(f"console {msg.type}: {msg.text}")
            if msg.type in ("error", "warning") else None)
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                      dialog.dismiss()))
    html_text = ('<!doctype html><html><head><meta charset="utf-8"><title>graph</title>'
                 f'</head><body>{body}<script src="/static/graph.js"></script></body></html>')

    def serve(route: Any) -> None:
        url = route.request.url
        path = url[len(ORIGIN):] if url.startswith(ORIGIN) else None
        if path is None:
            problems.append(f"request off the origin: {url}")
            route.abort()
            return
        if path == "/":
            content, kind = html_text.encode(), "text/html; charset=utf-8"
        elif path.startswith("/static/") and (STATIC / path[8:]).is_file():
            content, kind = (STATIC / path[8:]).read_bytes(), "text/javascript"
        else:
            problems.append(f"not found: {path}")
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, body=content, headers={
            "content-type": kind, "content-security-policy": CSP})

    page.route("**/*", serve)
    page.goto(f"{ORIGIN}/")
    return page, problems


def pre(source: str, pre_id: str) -> str:
    return f'<pre class="mermaid-source" id="{pre_id}">{html.escape(source)}</pre>'


def rendered(page: Any, count: int) -> None:
    page.wait_for_function(
        f"document.querySelectorAll('pre.mermaid-source[data-rendered]').length === {count}",
        timeout=30_000)


def test_graph_js_draws_the_marked_graph_under_the_pages_csp(browser: Any) -> None:
    page, problems = open_page(browser, pre(graph_source(approval(), "wait-for-answer"), "g"))
    rendered(page, 1)
    state = page.evaluate("""() => {
        const pre = document.getElementById('g'), holder = pre.nextElementSibling;
        const marked = [...holder.querySelectorAll('svg g.node.current')];
        return {state: pre.dataset.rendered, hidden: pre.hidden,
                holder: holder.className, svgs: holder.querySelectorAll('svg').length,
                nodes: holder.querySelectorAll('svg g.node').length,
                marked: marked.map(g => g.textContent.trim()),
                style: marked.length ? marked[0].querySelector('path, polygon, rect')
                    .getAttribute('style') : null};
    }""")
    assert state["state"] == "svg" and state["hidden"] is True
    assert state["holder"] == "mermaid-graph" and state["svgs"] == 1
    assert state["nodes"] == 7  # start, ask, the checkpoint, decide, two returns, end
    [label] = state["marked"]
    assert label.startswith("checkpoint wait-for-answer")
    assert "stroke-width:4px" in state["style"]
    assert problems == []
    page.close()


def test_graph_js_shows_labels_as_text_and_reports_a_broken_source(browser: Any) -> None:
    definition = parse_definition(
        '[process]\nname = "p"\n'
        '[[steps]]\nid = "t"\nkind = "throw"\n'
        f"message = {json.dumps(EVIL)}\n")
    body = (pre(graph_source(definition, "t", failed=True), "evil")
            + pre('flowchart TD\n    a[["x"', "broken"))
    page, problems = open_page(browser, body)
    rendered(page, 2)
    state = page.evaluate("""() => {
        const evil = document.getElementById('evil').nextElementSibling;
        const broken = document.getElementById('broken');
        return {failed: [...evil.querySelectorAll('g.node.failed')].map(g => g.textContent),
                markup: document.querySelectorAll('svg script, svg img, svg a').length,
                broken: broken.dataset.rendered, brokenHidden: broken.hidden,
                reason: broken.nextElementSibling.textContent,
                alerted: window.__alerted === true};
    }""")
    # the message is in the drawing as text, whole; none of it became an element
    [label] = state["failed"]
    assert EVIL.replace(" ", "") in label.replace(" ", "")
    assert state["markup"] == 0
    # a source Mermaid cannot read stays visible, with the reason beside it as text
    assert state["broken"] == "error" and state["brokenHidden"] is False
    assert state["reason"].startswith("The graph could not be drawn: Parse error")
    assert problems == []
    page.close()
