"""Many paused instances through the real command: `list-paused` pages by key and
streams its JSON, `purge-expired` goes in batches with progress, with or without the
agent. The rows are written to a real store's tables (tests/paused_rows.py); the
commands and the agent are the real ones."""

from __future__ import annotations

import json
import re
from pathlib import Path

from helpers import Procctl
from paused_rows import fill

from procctl.store import Store
from procctl.store.clock import utc_now

CURSOR_NOTE = re.compile(r"next page: procctl list-paused --limit (\d+) --after (\S+)")
INSTANCE = re.compile(r"\bi\d{7}\b")


def _store(home: Path) -> Store:
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    return Store(home / "procctl.db")


def test_list_paused_pages_by_cursor_and_streams_every_row(procctl: Procctl) -> None:
    store = _store(procctl.home)
    fill(store, 470)
    paused = store.count_paused()
    store.close()

    rows = procctl.ok("list-paused", "--json").json()
    assert len(rows) == paused > 400
    keys = [(row["paused_at"], row["instance_id"]) for row in rows]
    assert keys == sorted(keys, reverse=True)  # newest first
    assert all(row["cursor"] == f"{row['paused_at']}/{row['instance_id']}" for row in rows)
    middle = procctl.ok("list-paused", "--json", "--limit", "50", "--after",
                        rows[99]["cursor"]).json()
    assert middle == rows[100:150]

    # The table: a page, a bounded count, and the command for the next page.
    seen: list[str] = []
    args = ["list-paused"]
    for _ in range(12):
        page = procctl.ok(*args)
        seen.extend(INSTANCE.findall(page.out))
        found = CURSOR_NOTE.search(page.err)
        if found is None:
            break
        if len(seen) == 50:
            assert f"Showing the newest 50 of {paused}" in page.err, page.err
        args = ["list-paused", "--limit", found[1], "--after", found[2]]
    assert seen == [row["instance_id"] for row in rows]

    bad = procctl("list-paused", "--after", "not-a-cursor")
    assert bad.code == 2 and "not a cursor" in bad.err, str(bad)


def _expired_ids(home: Path) -> set[str]:
    store = Store(home / "procctl.db")
    try:
        return {instance_id for instance_id, _ in store.expired(utc_now())}
    finally:
        store.close()


def _paused_ids(home: Path) -> set[str]:
    store = Store(home / "procctl.db")
    try:
        return {row.instance.id for row in store.list_paused(limit=-1)}
    finally:
        store.close()


def _each_failed_once(home: Path, ids: set[str]) -> None:
    store = Store(home / "procctl.db")
    try:
        for instance_id in ids:
            assert store.get_instance(instance_id).status == "failed", instance_id
            assert store.find_checkpoint(instance_id) is None
            kinds = [e.kind for e in store.events(instance_id)]
            assert kinds.count("instance_expired") == 1, (instance_id, kinds)
        assert store.expired(utc_now()) == []
    finally:
        store.close()


def test_purge_without_an_agent_goes_in_batches_with_progress(procctl: Procctl) -> None:
    store = _store(procctl.home)
    fill(store, 2300, expired_every=2)
    store.close()
    expired = _expired_ids(procctl.home)
    live = _paused_ids(procctl.home) - expired
    assert len(expired) > 1100

    done = procctl.ok("purge-expired")
    listed = [line for line in done.out.splitlines() if line.startswith("Expired i")]
    assert len(listed) == 100 and all("failed (reason expired)" in line for line in listed)
    assert f"Expired {len(expired):,} instances in all" in done.out
    progress = re.findall(r"\.\.\. ([\d,]+) expired so far", done.err)
    assert progress[:2] == ["500", "1,000"], done.err
    assert progress[-1] == f"{len(expired):,}"
    _each_failed_once(procctl.home, expired)
    assert _paused_ids(procctl.home) == live  # the others untouched
    assert procctl.ok("purge-expired", "--json").json() == {
        "dry_run": False, "expired": [], "left_for_agent": []}


def test_purge_with_the_agent_expires_each_instance_once(procctl: Procctl) -> None:
    store = _store(procctl.home)
    fill(store, 2600, expired_every=2, mixed=False)
    store.close()
    expired = _expired_ids(procctl.home)
    dry = procctl.ok("purge-expired", "--dry-run", "--json").json()
    assert {item["instance_id"] for item in dry["expired"]} == expired

    # The agent's clock expires them too (a batch per tick): whoever takes one, each
    # ends failed once, and the purge reports only what it did.
    procctl.ok("agent", "start")
    done = procctl.ok("purge-expired", "--json", timeout=120)
    reported = [item["instance_id"] for item in json.loads(done.out)["expired"]]
    assert len(reported) == len(set(reported)) and set(reported) <= expired
    _each_failed_once(procctl.home, expired)
