"""The SQLite store on a real file: schema, migrations, conditional transitions."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from procctl.store import Store, StoreError
from procctl.store.errors import Conflict, NotFound, StoreCorrupt
from procctl.store.schema import SCHEMA_VERSION


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store(tmp_path / "procctl.db")
    store.put_definition("abc", "hello", "1", "/x/hello.toml", "[process]\nname='hello'\n")
    return store


def _instance(store: Store, instance_id: str = "i1", name: str = "hello") -> None:
    store.create_instance(instance_id, "abc", name, "1", '{"who": "x"}', '{"kind": "cli"}')


def test_new_file_gets_the_current_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    store = Store(path)
    assert store.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert (path.stat().st_mode & 0o777) == 0o600


def test_definition_text_is_stored_once_per_hash(store: Store) -> None:
    store.put_definition("abc", "hello", "1", "/elsewhere.toml", "other text")
    assert store.get_definition("abc").source == "[process]\nname='hello'\n"


def test_instance_life_cycle(store: Store) -> None:
    _instance(store)
    assert store.get_instance("i1").status == "running"
    store.finish_instance("i1", "completed", result_json="42")
    record = store.get_instance("i1")
    assert (record.status, record.result_json) == ("completed", "42")
    assert record.ended_at is not None


def test_transition_from_the_wrong_status_is_refused(store: Store) -> None:
    _instance(store)
    store.finish_instance("i1", "failed", error_json="{}")
    with pytest.raises(Conflict):
        store.finish_instance("i1", "completed")
    assert store.get_instance("i1").status == "failed"


def test_unknown_instance_and_unique_prefix(store: Store) -> None:
    _instance(store, "abcdef123456")
    assert store.get_instance("abcd").id == "abcdef123456"
    with pytest.raises(NotFound, match="no instance 'zzzz'"):
        store.get_instance("zzzz")


def test_list_filters_newest_first(store: Store) -> None:
    _instance(store, "a", "hello")
    _instance(store, "b", "other")
    _instance(store, "c", "hello")
    store.finish_instance("c", "completed")
    assert [r.id for r in store.list_instances()] == ["c", "b", "a"]
    assert [r.id for r in store.list_instances(process_name="hello")] == ["c", "a"]
    assert [r.id for r in store.list_instances(status="running")] == ["b", "a"]
    assert store.count_by_status() == {"running": 2, "completed": 1}


def test_events_in_order(store: Store) -> None:
    _instance(store)
    store.add_event("i1", "step_started", step_id="s", step_path="steps[0]")
    store.add_event("i1", "step_finished", '{"duration": 1}', step_id="s")
    events = store.events("i1")
    assert [e.kind for e in events] == ["step_started", "step_finished"]
    assert store.events("i1", after_id=events[0].id)[0].kind == "step_finished"


def test_a_newer_schema_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    Store(path).close()
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer than this procctl"):
        Store(path)
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1


def test_a_corrupt_file_is_refused_not_reset(tmp_path: Path) -> None:
    path = tmp_path / "procctl.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreCorrupt, match="is corrupt: file is not a database"):
        Store(path)
    assert path.read_bytes().startswith(b"this is not a database")


def test_readonly_open_of_a_missing_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no store"):
        Store(tmp_path / "none.db", must_exist=True)
    assert not (tmp_path / "none.db").exists()


def test_a_writer_waits_for_another_process_lock(tmp_path: Path, store: Store) -> None:
    """A held write lock delays a write (busy timeout); it does not fail it."""
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    release = threading.Timer(0.5, lambda: other.execute("COMMIT"))
    release.start()
    started = time.monotonic()
    _instance(store)
    assert time.monotonic() - started >= 0.4
    assert store.get_instance("i1").status == "running"
    release.join()
    other.close()


def test_a_schema_1_store_from_the_first_release_migrates_and_keeps_its_rows(
        tmp_path: Path) -> None:
    """tests/data holds a database written by schema 1; it must keep opening."""
    path = tmp_path / "procctl.db"
    shutil.copy(Path(__file__).parent.parent / "data" / "procctl-schema1.db", path)
    store = Store(path, must_exist=True)
    assert store.schema_version == SCHEMA_VERSION
    record = store.get_instance("0123456789ab")
    assert (record.status, record.result_json, record.correlation_id) == (
        "completed", '"Hello, world!"', None)
    assert [e.kind for e in store.events(record.id)] == ["step_finished"]
    assert store.list_paused() == []
    assert store.integrity_check() == "ok"
