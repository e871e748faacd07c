"""Fixtures of the browser and security tests: one home with a real agent and `procctl ui`
on it per pytest process, headless Chromium (Debian's) under Playwright, and a fresh
page per test that records its dialogs, requests and errors (ui/kit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from helpers import Procctl
from ui.kit import CHROMIUM, LAUNCH_ARGS, UiHome, Watched, require_ui, start_ui, unavailable


@pytest.fixture(scope="session")
def ui_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiHome]:
    """One home per pytest process with a real agent and `procctl ui` on it; each test
    makes its own instances (unique orders) and looks only at those."""
    require_ui()
    folder = tmp_path_factory.mktemp("ui")
    procctl = Procctl(folder / "home")
    procctl.ok("agent", "start")
    ui = start_ui(procctl, folder / "server")
    try:
        yield UiHome(procctl, ui, folder)
    finally:
        ui.stop()
        procctl.stop_agent()


# --- the browser ------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) under Playwright, one per test module: Playwright's
    sync API keeps an event loop running in its thread while it is open, and the
    asyncio.run() of other test files that xdist gives the same worker would fail."""
    require_ui()
    try:
        from playwright.sync_api import Error, expect, sync_playwright
    except ImportError as exc:
        unavailable(f"Python Playwright is not installed ({exc}): pip install playwright")
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: apt-get install chromium")
    expect.set_options(timeout=10_000)  # ms, as the pages' own: a loaded 2-core machine
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


@pytest.fixture
def watched(browser: Any) -> Iterator[Watched]:
    """A fresh browser context (no cookies) and page, recording what the page does."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    page = context.new_page()
    seen = Watched(page)

    def on_dialog(dialog: Any) -> None:
        seen.dialogs.append(f"{dialog.type}: {dialog.message}")
        if seen.accept_dialogs:
            dialog.accept()
        else:
            dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("console", lambda message: seen.errors.append(message.text)
            if message.type == "error" else None)
    page.on("pageerror", lambda exc: seen.errors.append(f"uncaught: {exc}"))
    page.on("response", lambda response: seen.failed.append(
        f"{response.status} {response.url}") if response.status >= 400 else None)
    try:
        yield seen
    finally:
        context.close()


