"""Opening the store to read never writes it: no WAL switched on, no migration, no file
created or left behind, with or without a writer (an agent) holding it open."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from procctl.agent.paths import HomePaths
from procctl.cli.options import read_store
from procctl.store import Store, StoreError
from procctl.store.errors import NotFound
from procctl.store.reading import current_tables
from procctl.store.schema import SCHEMA_VERSION

SCHEMA1 = Path(__file__).parent.parent / "data" / "procctl-schema1.db"
SIDE_FILES = ("-wal", "-shm", "-journal")


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _side_files(path: Path) -> list[str]:
    return [path.name + s for s in SIDE_FILES if path.with_name(path.name + s).exists()]


def _schema1(tmp_path: Path, *, wal: bool = False) -> Path:
    path = tmp_path / "procctl.db"
    shutil.copy(SCHEMA1, path)
    if wal:  # the same rows in a file switched to WAL mode, closed cleanly (no -wal left)
        db = sqlite3.connect(path)
        db.execute("PRAGMA journal_mode = WAL")
        db.close()
        assert _side_files(path) == []
    return path


def _current(tmp_path: Path) -> Path:
    """A store of the current schema in WAL mode, closed (as an agent leaves it)."""
    store = Store(tmp_path / "procctl.db")
    store.put_definition("d1", "p", None, None, "src")
    store.create_instance("i1", "d1", "p", None, "{}", "{}")
    store.close()
    return store.path


@pytest.mark.parametrize("wal", [False, True], ids=["rollback-file", "wal-file"])
def test_an_older_store_reads_as_it_is_and_is_left_byte_for_byte(
        tmp_path: Path, wal: bool) -> None:
    path = _schema1(tmp_path, wal=wal)
    before = _digest(path)
    store = Store(path, read_only=True)
    try:
        assert (store.file_schema, store.schema_version) == (1, 1)
        record = store.get_instance("0123456789ab")
        assert (record.status, record.correlation_id, record.parent_id) == (
            "completed", None, None)
        assert [e.kind for e in store.events(record.id)] == ["step_finished"]
        # tables and columns of later schemas read as empty / their default
        assert store.find_checkpoint(record.id) is None
        assert store.list_paused() == [] and store.count_paused() == 0
        assert store.list_signals(("pending", "rejected"), 10) == []
        assert store.resume_target("anything").holder is None
        with pytest.raises(StoreError, match="readonly"):
            store.add_event(record.id, "x")
    finally:
        store.close()
    assert _digest(path) == before
    assert _side_files(path) == []


def test_an_older_store_shows_every_current_table_and_column(tmp_path: Path) -> None:
    path = _schema1(tmp_path)
    store = Store(path, read_only=True)
    try:
        for table, columns in current_tables().items():
            cursor = store._db.execute(f"SELECT * FROM {table} LIMIT 0")
            assert [c[0] for c in cursor.description] == [name for name, _ in columns]
    finally:
        store.close()


def test_a_closed_wal_store_is_read_without_making_its_wal_files(tmp_path: Path) -> None:
    path = _current(tmp_path)
    before = _digest(path)
    store = Store(path, read_only=True)
    try:
        assert store.file_schema == SCHEMA_VERSION
        assert [r.id for r in store.list_instances()] == ["i1"]
        assert _side_files(path) == []
        assert not store.changed_since_open()
    finally:
        store.close()
    assert _digest(path) == before
    assert _side_files(path) == []


def test_a_store_held_open_by_a_writer_is_read_with_its_wal(tmp_path: Path) -> None:
    """While an agent has the store open, a reader sees what it committed (still only
    in the WAL) and leaves the writer's files to it."""
    writer = Store(_current(tmp_path))
    try:
        writer.create_instance("i2", "d1", "p", None, "{}", "{}")
        assert writer.path.with_name("procctl.db-wal").stat().st_size > 0
        reader = Store(writer.path, read_only=True)
        try:
            assert {r.id for r in reader.list_instances()} == {"i1", "i2"}
        finally:
            reader.close()
        writer.create_instance("i3", "d1", "p", None, "{}", "{}")  # the writer goes on
        assert len(writer.list_instances()) == 3
    finally:
        writer.close()
    assert _side_files(writer.path) == []


def test_a_newer_store_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = _schema1(tmp_path)
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = _digest(path)
    with pytest.raises(StoreError) as caught:
        Store(path, read_only=True)
    assert (f"schema version {SCHEMA_VERSION + 1}, newer than this procctl understands "
            f"({SCHEMA_VERSION}): an older procctl cannot read a newer store"
            ) in caught.value.message
    assert _digest(path) == before
    assert _side_files(path) == []


def test_a_missing_store_is_not_created(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no store"):
        Store(tmp_path / "procctl.db", read_only=True)
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_opens_the_store_during_a_read_makes_the_read_start_again(
        tmp_path: Path) -> None:
    """Read without WAL files, the file has no locks: an agent that starts meanwhile is
    noticed (its WAL file appears) and the read runs again, through its WAL."""
    _current(tmp_path)
    home = HomePaths(tmp_path)
    writers: list[Store] = []
    reads: list[bool] = []

    def read(store: Store) -> list[str]:
        reads.append(store.changed_since_open())
        if not writers:  # an agent starts and commits while this read runs
            writers.append(Store(home.db))
            writers[0].create_instance("i2", "d1", "p", None, "{}", "{}")
        return sorted(r.id for r in store.list_instances())

    try:
        assert read_store(home, read) == ["i1", "i2"]
    finally:
        for writer in writers:
            writer.close()
    assert reads == [False, False]
    assert _side_files(home.db) == []


def test_the_wal_files_an_agent_killed_left_are_read_and_left_as_they_are(
        tmp_path: Path) -> None:
    """An agent killed with SIGKILL leaves its WAL files, with commits not yet in the
    database file: a reader sees those commits and writes nothing into the database."""
    writer = Store(_current(tmp_path))
    crashed = tmp_path / "crashed"
    crashed.mkdir(mode=0o700)
    try:
        writer.create_instance("i2", "d1", "p", None, "{}", "{}")
        for name in ("procctl.db", "procctl.db-wal", "procctl.db-shm"):  # as at a kill
            shutil.copy2(writer.path.with_name(name), crashed / name)
    finally:
        writer.close()
    path = crashed / "procctl.db"
    before = _digest(path)
    store = Store(path, read_only=True)
    try:
        assert {r.id for r in store.list_instances()} == {"i1", "i2"}
    finally:
        store.close()
    assert _digest(path) == before
    assert _side_files(path) == ["procctl.db-wal", "procctl.db-shm"]
    writing = Store(path)  # the next agent takes the commits in and goes on
    assert {r.id for r in writing.list_instances()} == {"i1", "i2"}
    writing.close()
