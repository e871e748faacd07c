"""A damaged store is refused: at open (within a time budget), when a call meets a
damaged page later, and after a check in the background; and the store's files are
opened only when they are private (no link, no other owner, not writable by others).
Real SQLite files, damaged the way a disk or a stray write damages them."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest
from helpers import wait_for

from procctl.store import Store, StoreError
from procctl.store.errors import StoreCorrupt, StoreFull, StoreUnsafe
from procctl.store.integrity import store_error

NOBODY = 65534


def _filled(path: Path, instances: int = 60) -> Path:
    """A store of a few hundred pages, made through the store's own API."""
    store = Store(path)
    store.put_definition("d" * 64, "filler", None, None, "[process]\nname = 'filler'\n")
    for number in range(instances):
        instance_id = f"inst-{number:04d}"
        store.create_instance(instance_id, "d" * 64, "filler", None, "{}", "{}")
        store.add_events([(instance_id, "2026-01-01T00:00:00", "log",
                           f'{{"message": "{"x" * 900}"}}', "s", "steps[0]")] * 4)
    store.close()
    return path


def _damage(path: Path, table: str) -> int:
    """16 bytes of garbage over the header of the middle page of `table`'s b-tree.
    Returns the page's number."""
    db = sqlite3.connect(path)
    pages = [int(row[0]) for row in db.execute(
        "SELECT pageno FROM dbstat WHERE name = ? ORDER BY pageno", (table,))]
    page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
    db.close()
    page = pages[len(pages) // 2]
    with open(path, "r+b") as handle:
        handle.seek((page - 1) * page_size)
        handle.write(b"\xa5" * 16)
    return page


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("must_exist", [False, True])
def test_a_damaged_page_is_found_at_open_and_the_file_is_left_as_it_was(
        tmp_path: Path, must_exist: bool) -> None:
    path = _filled(tmp_path / "procctl.db")
    page = _damage(path, "events")
    before = _digest(path)
    with pytest.raises(StoreCorrupt) as caught:
        Store(path, must_exist=must_exist)
    message = caught.value.message
    assert message.startswith(f"the store {path} is corrupt: ")
    assert f"Page {page}" in message or "malformed" in message, message
    assert caught.value.hint is not None and ".recover" in caught.value.hint
    assert _digest(path) == before
    assert not path.with_name("procctl.db-wal").exists()


def test_the_budget_bounds_the_check_at_open(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db")
    _damage(path, "events")
    skipped = Store(path, check_budget=0)  # no time at all: nothing checked
    assert skipped.checked_whole is False
    skipped.close()
    with pytest.raises(StoreCorrupt):
        Store(path, check_budget=None)


def test_a_damaged_page_met_by_a_call_is_a_store_corrupt_error(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db")
    _damage(path, "instances")
    store = Store(path, check_budget=0)
    try:
        with pytest.raises(StoreCorrupt, match=f"the store {path} is corrupt: "):
            store.list_instances(limit=1000)
    finally:
        store.close()


def test_the_check_in_the_background_refuses_every_call_once_it_finds_damage(
        tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db")
    _damage(path, "events")
    store = Store(path, check_budget=0, check_rest_in_background=True)
    try:
        wait_for(lambda: store.refused is not None, timeout=10,
                 message="the background check to find the damaged page")
        with pytest.raises(StoreCorrupt, match="is corrupt"):
            store.get_instance("inst-0001")  # a page that is fine: refused all the same
    finally:
        store.close()


def test_the_check_in_the_background_of_a_sound_store_refuses_nothing(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db", instances=10)
    store = Store(path, check_budget=0, check_rest_in_background=True)
    try:
        assert store._background is not None
        store._background._thread.join(timeout=10)
        assert store.refused is None
        assert store.get_instance("inst-0003").process_name == "filler"
    finally:
        store.close()


@pytest.mark.parametrize(("error", "expected", "words"), [
    (sqlite3.OperationalError("database or disk is full"), StoreFull, "disk of the store"),
    (sqlite3.DatabaseError("database disk image is malformed"), StoreCorrupt, "is corrupt"),
    (sqlite3.OperationalError("database is locked"), StoreError, "cannot be used"),
    (sqlite3.OperationalError("disk I/O error"), StoreError, "cannot be used"),
])
def test_every_sqlite_error_about_the_file_is_a_store_error_naming_it(
        tmp_path: Path, error: sqlite3.Error, expected: type[StoreError], words: str) -> None:
    found = store_error(error, tmp_path / "procctl.db")
    assert type(found) is expected
    assert found is not None and words in found.message
    assert str(tmp_path / "procctl.db") in found.message


def test_a_bug_is_not_taken_for_a_store_problem(tmp_path: Path) -> None:
    assert store_error(sqlite3.IntegrityError("UNIQUE constraint failed"), tmp_path) is None
    assert store_error(sqlite3.ProgrammingError("closed database"), tmp_path) is None


# -- the files: no links, no other owner, not writable by others --------------------------


@pytest.mark.parametrize("name", ["procctl.db", "procctl.db-wal", "procctl.db-shm"])
def test_a_store_file_that_is_a_link_is_not_opened(tmp_path: Path, name: str) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    if name != "procctl.db":
        Store(home / "procctl.db").close()
    victim = tmp_path / "victim"
    victim.write_bytes(b"someone else's file\n")
    (home / name).symlink_to(victim)
    with pytest.raises(StoreUnsafe, match=f"the store file {home / name} is a symbolic link"):
        Store(home / "procctl.db")
    assert victim.read_bytes() == b"someone else's file\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="making a file of another user needs root")
def test_a_store_of_another_user_is_not_opened(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db", instances=2)
    before = _digest(path)
    os.chown(path, NOBODY, NOBODY)
    with pytest.raises(StoreUnsafe, match=f"belongs to uid {NOBODY}, not to this user"):
        Store(path, must_exist=True)
    assert _digest(path) == before
    assert not path.with_name("procctl.db-wal").exists()


def test_a_store_that_others_may_write_is_not_opened(tmp_path: Path) -> None:
    path = _filled(tmp_path / "procctl.db", instances=2)
    os.chmod(path, 0o666)
    with pytest.raises(StoreUnsafe, match=r"may be written by others \(mode 0666\)"):
        Store(path)
