"""The web view in real headless Chromium: a person finds a paused approval, sees where it
stands on its graph, resumes it from the page and sees it complete without a reload; a
field of the wrong type is refused in the page; cancel asks first; the instances page
stays quick with 100,000 instances. Screenshots of each page are saved (ui/kit.py).

Against a real `procctl ui` process and a real agent (conftest.py).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from helpers import Procctl, instance_state, show_json, unique_key, wait_for
from ui.kit import UiHome, UiServer, Watched, screenshot, start_ui

from procctl.store import Store

EXPECT_TIMEOUT = 10_000  # ms: the agent answers in well under a second


def _expect() -> Any:
    try:
        from playwright.sync_api import expect
    except ImportError:  # the fixtures skip first
        pytest.skip("Playwright is not installed")
    return expect


def _mark(page: Any) -> None:
    """Leave a mark in the page's window: it is gone if the page reloads."""
    page.evaluate("() => { window.__procctl_same_page = true; }")


def _same_page(page: Any) -> bool:
    return bool(page.evaluate("() => window.__procctl_same_page === true"))


def _posts(watched: Watched, path: str) -> list[str]:
    return [url for url in watched.requests if url.split("?")[0].endswith(path)]


def _open_instance(ui_home: UiHome, watched: Watched, instance_id: str) -> Any:
    page = watched.page
    page.goto(ui_home.ui.at(f"/instances/{instance_id}"))
    _expect()(page.locator("#status")).to_have_attribute("data-status", "paused")
    return page


def test_find_a_paused_approval_see_its_graph_resume_it_and_see_it_complete(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    expect = _expect()
    made = ui_home.approval()
    correlation_id = f"approval-{made['order']}"
    page = watched.page
    page.goto(ui_home.ui.url)
    expect(page.locator(f"tr[data-instance-id='{made['id']}']")).to_be_visible()
    screenshot(page, tmp_path, "instances")

    # find it on the paused page by its correlation ID, and open it
    page.get_by_role("link", name="Paused").click()
    row = page.locator(f"tr[data-correlation-id='{correlation_id}']")
    expect(row).to_be_visible()
    screenshot(page, tmp_path, "paused")
    row.locator(f"a[href='/instances/{made['id']}']").first.click()
    page.wait_for_url(f"**/instances/{made['id']}")
    expect(page.locator("#status")).to_have_attribute("data-status", "paused")

    # the graph is drawn (an SVG, by the packaged Mermaid) with the checkpoint marked
    marked = page.locator(".graph svg .node.current")
    expect(marked).to_have_count(1)
    expect(marked).to_contain_text("wait-for-answer")
    expect(page.locator(".graph svg .node.failed")).to_have_count(0)
    screenshot(page, tmp_path, "instance")

    # resume from the form; the outcome and the completion appear in this same page
    _mark(page)
    form = page.locator("form.resume-form")
    form.locator("[name='approved']").fill("true")
    form.locator("[name='by']").fill("ada")
    form.locator("button.resume").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "completed",
                                                      timeout=EXPECT_TIMEOUT)
    assert _same_page(page), "the page reloaded"
    expect(page.locator("pre.result")).to_contain_text("ada", timeout=EXPECT_TIMEOUT)
    screenshot(page, tmp_path, "instance-completed")
    shown = show_json(ui_home.procctl, made["id"])
    assert shown["status"] == "completed"
    assert shown["result"]["approved"] is True and shown["result"]["by"] == "ada", shown
    assert watched.problems() == [], watched.problems()


def test_a_field_of_the_wrong_type_is_refused_in_the_page(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    expect = _expect()
    made = ui_home.approval()
    page = _open_instance(ui_home, watched, made["id"])
    form = page.locator("form.resume-form")
    outcome = form.locator(".outcome")
    for approved, shot in (("yes", "resume-refused"), ("", None), ("1", None)):
        outcome.evaluate("element => { element.textContent = ''; }")
        form.locator("[name='approved']").fill(approved)
        form.locator("[name='by']").fill("ada")
        form.locator("button.resume").click()
        expect(outcome).to_contain_text("approved")
        if shot:
            screenshot(page, tmp_path, shot)
    assert _posts(watched, "/api/resume") == [], "the page sent a payload it should refuse"
    assert instance_state(ui_home.procctl, made["id"])[0] == "paused"


def test_cancel_asks_for_confirmation_and_cancels(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    expect = _expect()
    made = ui_home.approval()
    page = _open_instance(ui_home, watched, made["id"])
    _mark(page)
    page.locator("input.cancel-reason").first.fill("not needed any more")
    watched.accept_dialogs = False
    page.locator("button.cancel").first.click()
    wait_for(lambda: watched.dialogs, timeout=5, message="the confirmation")
    assert watched.dialogs[0].startswith("confirm"), watched.dialogs
    page.wait_for_timeout(300)  # a cancel sent anyway would be on its way by now
    assert _posts(watched, "/api/cancel") == []
    assert instance_state(ui_home.procctl, made["id"])[0] == "paused"

    watched.accept_dialogs = True
    page.locator("button.cancel").first.click()
    expect(page.locator("#status")).to_have_attribute("data-status", "cancelled",
                                                      timeout=EXPECT_TIMEOUT)
    assert _same_page(page), "the page reloaded"
    assert len(watched.dialogs) == 2, watched.dialogs
    screenshot(page, tmp_path, "instance-cancelled")
    assert instance_state(ui_home.procctl, made["id"])[0] == "cancelled"
    assert "not needed any more" in str(show_json(ui_home.procctl, made["id"]))


FLAKY = """
[process]
name = "flaky-{key}"

[[steps]]
id = "check"
task = "exec"
with = {{ argv = ["test", "-e", "{flag}"] }}
"""


def test_retry_asks_for_confirmation_and_runs_the_failed_instance_again(
        ui_home: UiHome, watched: Watched, tmp_path: Path) -> None:
    expect = _expect()
    key = unique_key()
    flag = tmp_path / "flag"
    definition = tmp_path / "flaky.toml"
    definition.write_text(FLAKY.format(key=key, flag=flag), encoding="utf-8")
    failed = ui_home.procctl("run", definition, "--wait", "--json")
    instance_id = failed.json()["instance_id"]
    assert failed.json()["status"] == "failed", str(failed)
    page = watched.page
    page.goto(ui_home.ui.at(f"/instances/{instance_id}"))
    expect(page.locator("#status")).to_have_attribute("data-status", "failed")
    expect(page.locator(".graph svg .node.failed")).to_contain_text("check")
    screenshot(page, tmp_path, "instance-failed")
    _mark(page)
    watched.accept_dialogs = False
    page.locator("button.retry").click()
    wait_for(lambda: watched.dialogs, timeout=5, message="the confirmation")
    page.wait_for_timeout(300)
    assert _posts(watched, "/api/retry") == []
    assert instance_state(ui_home.procctl, instance_id)[0] == "failed"
    flag.touch()  # what was missing is there now
    watched.accept_dialogs = True
    page.locator("button.retry").click()
    expect(page.locator("#status")).to_have_attribute("data-status", "completed",
                                                      timeout=EXPECT_TIMEOUT)
    assert _same_page(page), "the page reloaded"
    assert [d.split(":")[0] for d in watched.dialogs] == ["confirm", "confirm"]
    assert instance_state(ui_home.procctl, instance_id)[0] == "completed"


SOON = """
[process]
name = "soon-{key}"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "soon-{key}"
ttl = "10m"
"""


def test_the_paused_page_counts_down_to_expiry(ui_home: UiHome, watched: Watched,
                                                tmp_path: Path) -> None:
    expect = _expect()
    key = unique_key()
    definition = tmp_path / "soon.toml"
    definition.write_text(SOON.format(key=key), encoding="utf-8")
    made = ui_home.paused(definition)
    page = watched.page
    page.goto(ui_home.ui.at("/paused"))
    countdown = page.locator(f"tr[data-instance-id='{made['id']}'] time.countdown").first
    expect(countdown).to_contain_text("in 9m")
    first = countdown.inner_text()
    expect(countdown).not_to_have_text(first, timeout=3000)  # it ticks, without a reload
    assert countdown.inner_text().startswith("in 9m"), countdown.inner_text()


def test_a_new_instance_appears_on_the_instances_page_without_a_reload(
        ui_home: UiHome, watched: Watched) -> None:
    expect = _expect()
    page = watched.page
    page.goto(ui_home.ui.url)
    expect(page.locator("#instances")).to_be_visible()
    _mark(page)
    made = ui_home.approval()
    row = page.locator(f"tr[data-instance-id='{made['id']}']")
    expect(row).to_be_visible(timeout=EXPECT_TIMEOUT)
    expect(row.locator(".status")).to_have_attribute("data-status", "paused")
    assert _same_page(page), "the page reloaded"


def test_every_page_renders_without_errors(ui_home: UiHome, watched: Watched,
                                           tmp_path: Path) -> None:
    expect = _expect()
    made = ui_home.approval()
    page = watched.page
    page.goto(ui_home.ui.url)
    for name, path in (("signals", "/signals"), ("definitions", "/definitions")):
        page.goto(f"{ui_home.ui.origin}{path}")  # the cookie set by the first visit
        expect(page.locator("main h1")).to_be_visible()
        screenshot(page, tmp_path, name)
    # an instance's definition: its text and its graph, nothing marked
    page.goto(f"{ui_home.ui.origin}/instances/{made['id']}")
    page.locator("main a[href^='/definitions/']").first.click()
    expect(page.locator(".graph svg")).to_be_visible()
    expect(page.locator("main")).to_contain_text('name = "approval"')
    expect(page.locator(".graph svg .node.current")).to_have_count(0)
    screenshot(page, tmp_path, "definition")
    assert watched.problems() == [], watched.problems()


# --- scale -------------------------------------------------------------------------

SCALE = 100_000
#: seconds a page may take with 100,000 instances (measured: well under a second)
QUICK = 3.0


@dataclass
class Scale:
    ui: UiServer
    newest: str  # the latest started_at in the store


@pytest.fixture(scope="module")
def scale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scale]:
    """`procctl ui` on a home holding 100,000 instances (tests/paused_rows.py writes them
    in one transaction, as the agent would shape them); no agent: reading needs none."""
    import paused_rows

    folder = tmp_path_factory.mktemp("scale")
    procctl = Procctl(folder / "home")
    procctl.home.mkdir(parents=True)
    store = Store(procctl.home / "procctl.db")
    try:
        paused_rows.fill(store, SCALE)
    finally:
        store.close()
    with closing(sqlite3.connect(procctl.home / "procctl.db")) as db:
        newest = db.execute("SELECT max(started_at) FROM instances").fetchone()[0]
    ui = start_ui(procctl, folder / "server")
    try:
        yield Scale(ui, newest)
    finally:
        ui.stop()
        procctl.stop_agent()


def _timed(action: Any) -> float:
    start = time.monotonic()
    action()
    return time.monotonic() - start


def test_the_instances_page_stays_quick_with_100000_instances(
        scale: Scale, watched: Watched, tmp_path: Path) -> None:
    expect = _expect()
    page = watched.page
    rows = page.locator("#instances tbody tr")
    first = _timed(lambda: page.goto(scale.ui.url))
    assert 0 < rows.count() <= 1000, rows.count()
    # newest first, from the newest in the store
    started = rows.locator("td.when time").evaluate_all(
        "times => times.map(t => t.getAttribute('datetime'))")
    assert started == sorted(started, reverse=True), started[:10]
    assert started[0] == scale.newest, (started[0], scale.newest)
    screenshot(page, tmp_path, "instances-100k")

    before = rows.first.get_attribute("data-instance-id")
    following = _timed(lambda: (page.locator("a.next-page").click(),
                                page.wait_for_load_state("load")))
    expect(rows.first).not_to_have_attribute("data-instance-id", before or "")

    def by_correlation() -> None:
        page.goto(f"{scale.ui.origin}/?correlation_id=order-0054321")
        expect(rows).to_have_count(1)

    found = _timed(by_correlation)
    assert rows.first.get_attribute("data-instance-id") == "i0054321"

    def by_status() -> None:
        page.goto(f"{scale.ui.origin}/?status=failed")
        expect(rows.first).to_be_visible()

    failed = _timed(by_status)
    statuses = set(rows.locator(".status").evaluate_all(
        "cells => cells.map(c => c.dataset.status)"))
    assert statuses == {"failed"}, statuses
    # the page still answers at once (no script busy over the rows)
    answer = _timed(lambda: page.evaluate("() => document.title"))
    timings = {"first page": first, "next page": following, "by correlation ID": found,
               "failed only": failed, "a script call": answer}
    print("100,000 instances:", ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    slow = {k: v for k, v in timings.items() if v > QUICK}
    assert not slow, f"slower than {QUICK}s with {SCALE:,} instances: {slow}"
    # an open live page costs the server little: its change feed reads only what moved
    page.goto(scale.ui.url)
    expect(page.locator("#live")).to_be_visible()
    used = _cpu_seconds(scale.ui.proc.pid)
    page.wait_for_timeout(2000)
    share = (_cpu_seconds(scale.ui.proc.pid) - used) / 2
    print(f"procctl ui with a live page open: {share:.0%} of a core")
    assert share < 0.5, f"procctl ui used {share:.0%} of a core with one page open"
    assert watched.problems() == [], watched.problems()


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
