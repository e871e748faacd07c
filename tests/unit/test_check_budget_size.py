"""The check at open is not started on a file too big to be checked within its budget
(its partial read proved nothing of the rest and cost every open the whole budget: a
second per agent start, a quarter per CLI command at a million paused instances); the
agent then checks it whole in the background, and a damaged page still refuses it."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from helpers import wait_for

from procctl.store import Store, integrity
from procctl.store.errors import StoreCorrupt


def _filled(path: Path) -> Path:
    """A store of a few hundred pages, made through the store's own API."""
    store = Store(path)
    store.put_definition("d" * 64, "filler", None, None, "[process]\nname = 'filler'\n")
    for number in range(60):
        instance_id = f"inst-{number:04d}"
        store.create_instance(instance_id, "d" * 64, "filler", None, "{}", "{}")
        store.add_events([(instance_id, "2026-01-01T00:00:00", "log",
                           f'{{"message": "{"x" * 900}"}}', "s", "steps[0]")] * 4)
    store.close()
    return path


def _damage(path: Path) -> None:
    """16 bytes of garbage over the header of the middle page of the events b-tree."""
    db = sqlite3.connect(path)
    pages = [int(row[0]) for row in db.execute(
        "SELECT pageno FROM dbstat WHERE name = 'events' ORDER BY pageno")]
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    db.close()
    with open(path, "r+b") as handle:
        handle.seek((pages[len(pages) // 2] - 1) * page_size)
        handle.write(b"\xa5" * 16)


def _checks_run(path: Path, budget: float) -> tuple[bool, list[str]]:
    """(checked whole, the quick_check statements run) for an open with `budget`."""
    db = sqlite3.connect(path)
    ran: list[str] = []
    db.set_trace_callback(ran.append)
    try:
        whole = integrity.quick_check(db, path, budget)
    finally:
        db.close()
    return whole, [sql for sql in ran if "quick_check" in sql]


def test_a_file_within_reach_of_the_budget_is_checked_whole(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db")
    assert path.stat().st_size < 0.25 * integrity.CHECK_BYTES_PER_SECOND
    whole, ran = _checks_run(path, 0.25)
    assert whole and ran


def test_a_file_beyond_the_budget_is_not_started(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = _filled(tmp_path / "procctl.db")
    # As if checks ran at a thousandth of the size per second: this file is then
    # "too big" for a quarter of a second, as 2.7 GB is at the real rate.
    monkeypatch.setattr(integrity, "CHECK_BYTES_PER_SECOND", path.stat().st_size // 1000)
    started = time.monotonic()
    whole, ran = _checks_run(path, 0.25)
    assert not whole and ran == []
    assert time.monotonic() - started < 0.2


def test_a_damaged_file_beyond_the_budget_is_refused_by_the_check_in_the_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _filled(tmp_path / "procctl.db")
    _damage(path)
    monkeypatch.setattr(integrity, "CHECK_BYTES_PER_SECOND", path.stat().st_size // 1000)
    store = Store(path, check_budget=1.0, check_rest_in_background=True)
    try:
        assert not store.checked_whole
        wait_for(lambda: store.refused is not None, message="the background check")
        with pytest.raises(StoreCorrupt):
            store.count_paused()
    finally:
        store.close()
