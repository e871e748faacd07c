"""An instance's start is one transaction: its row and its instance_started event."""

from __future__ import annotations

import json
from pathlib import Path

from procctl.store import Store
from procctl.store.clock import utc_now


def _started(instance_id: str) -> tuple[str, str, str, str, None, None]:
    return (instance_id, utc_now(), "instance_started", json.dumps({"process": "p"}),
            None, None)


def test_the_instance_and_its_start_event_are_one_commit(tmp_path: Path) -> None:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    try:
        before = store.commits
        store.create_instance("i1", "sha", "p", "1", "{}", "{}", events=[_started("i1")])
        assert store.commits == before + 1
        assert [e.kind for e in store.events("i1")] == ["instance_started"]
    finally:
        store.close()


def test_a_child_made_before_writes_no_second_start(tmp_path: Path) -> None:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("sha", "p", "1", None, "source")
    try:
        store.create_instance("p1", "sha", "p", "1", "{}", "{}")
        first = store.create_instance("c1", "sha", "c", "1", "{}", "{}", "p1", "k",
                                      events=[_started("c1")])
        again = store.create_instance("c2", "sha", "c", "1", "{}", "{}", "p1", "k",
                                      events=[_started("c2")])
        assert first.id == again.id == "c1"
        assert [e.kind for e in store.events("c1")] == ["instance_started"]
        assert store.events("c2") == []
    finally:
        store.close()
