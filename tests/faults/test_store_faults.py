"""The store under stress: locked by another process, corrupt, too new, on a full disk.
Work may wait; nothing fails, is lost, or is done twice; a store the agent cannot use
is refused with a clear error and left as it was."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from faults.kit import (
    Agents,
    check_ledger_order,
    events,
    integrity,
    ledger,
    ledger_of,
    ledger_process,
    statuses,
    wait_status,
)
from helpers import Procctl, wait_for

from procctl.agent import values
from procctl.agent.client import AgentClient
from procctl.agent.paths import HomePaths
from procctl.store.schema import SCHEMA_VERSION

WriteDefinition = Callable[..., Path]


def test_a_locked_database_delays_work_and_loses_nothing(
        procctl: Procctl, agents: Agents, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """Another process holds the write lock (BEGIN IMMEDIATE) for 3 seconds while five
    instances reach their checkpoint: the commits wait for it, then all go on."""
    book = tmp_path / "ledger.txt"
    definition = write_definition(ledger_process("locked", 1))
    agent = agents.start()
    client = AgentClient(HomePaths.resolve(procctl.home))
    ids = [str(client.request("run", source=definition.read_text(), file=str(definition),
                              base_dir=str(tmp_path), wait=False,
                              params=values.encode({"ledger": str(book), "nap": 0.5})
                              )["instance_id"]) for _ in range(5)]
    holder = sqlite3.connect(procctl.home / "procctl.db", isolation_level=None, timeout=30)
    try:
        holder.execute("BEGIN IMMEDIATE")
        time.sleep(3.0)
        # Held up at the checkpoint: no commit block ran, nothing after it either.
        assert sorted(w[1] for w in ledger(book)) == ["s1"] * 5
        assert set(statuses(procctl.home, ids).values()) == {"running"}
    finally:
        holder.execute("COMMIT")
        holder.close()
    for instance_id in ids:
        wait_status(procctl.home, instance_id, "completed", timeout=30)
    for instance_id in ids:
        entries = [w for w in ledger(book) if w[0] == instance_id]
        check_ledger_order(instance_id, entries)
        assert [w[1] for w in entries] == ["s1", "commit-cp1", "s2"]
    assert agents.stop(agent) == 0
    assert "Traceback" not in agents.output(agent)


def _refused(procctl: Procctl, db: Path) -> tuple[str, int]:
    before = (db.read_bytes(), db.stat().st_mtime_ns)
    result = procctl("agent", "run", timeout=60)
    assert (db.read_bytes(), db.stat().st_mtime_ns) == before, "the store was changed"
    assert not (procctl.home / "agent.sock").exists()
    return result.err, result.code


def test_a_corrupt_database_is_refused_and_left_untouched(procctl: Procctl) -> None:
    procctl.home.mkdir(parents=True)
    db = procctl.home / "procctl.db"
    db.write_bytes(b"this is no SQLite file\n" * 500)
    err, code = _refused(procctl, db)
    assert code == 6, err
    assert f"Error: the store {db} is corrupt: file is not a database" in err
    assert "Hint: with no agent running for this home, restore procctl.db from a backup" in err
    assert "Traceback" not in err
    started = procctl("agent", "start")
    assert started.code == 6, str(started)
    assert "file is not a database" in started.err


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_a_newer_schema_is_refused_and_left_untouched(procctl: Procctl, journal: str) -> None:
    """A store written by a newer procctl (user_version above this one's schema)."""
    procctl.home.mkdir(parents=True)
    db = procctl.home / "procctl.db"
    newer = SCHEMA_VERSION + 1
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("CREATE TABLE future (x)")
    conn.execute(f"PRAGMA user_version = {newer}")
    conn.close()
    err, code = _refused(procctl, db)
    assert code == 6, err
    assert (f"has schema version {newer}, newer than this procctl understands "
            f"({SCHEMA_VERSION})") in err
    assert "Hint: upgrade procctl; the file was left untouched" in err
    mode = sqlite3.connect(db).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == journal


@pytest.fixture
def small_home(procctl: Procctl) -> Iterator[Path]:
    """The home on its own 16 MB tmpfs, so that the test can fill it (root only)."""
    home = procctl.home
    home.mkdir(parents=True)
    try:
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700",
                                  "tmpfs", str(home)], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("cannot mount a tmpfs for the home: no mount command")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs for the home: {mounted.stderr.strip()}")
    try:
        yield home
    finally:
        procctl.stop_agent()
        subprocess.run(["umount", "-l", str(home)], check=True)


def _fill(path: Path) -> None:
    """Write to `path` until the file system has no byte left."""
    with open(path, "wb", buffering=0) as out:
        for size in (1 << 20, 1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    out.write(b"\0" * size)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc


@pytest.mark.timeout(120)
def test_a_full_disk_delays_a_checkpoint_until_space_is_free(
        procctl: Procctl, agents: Agents, small_home: Path, tmp_path: Path,
        write_definition: WriteDefinition) -> None:
    """The disk fills while an instance runs towards its checkpoint: the agent says
    "disk full" and waits; once space is free the checkpoint commits and the instance
    completes, with no step done twice and nothing failed."""
    book = tmp_path / "ledger.txt"  # the ledger is not on the full disk
    definition = write_definition(ledger_process("disk-full", 1))
    agent = agents.start()
    instance_id = str(procctl.ok("run", definition, "--json", "--no-autostart", "-p",
                                 f"ledger={book}", "-p", "nap=1.5").json()["instance_id"])
    filler = small_home / "filler"
    _fill(filler)
    wait_for(lambda: "disk full" in agents.output(agent), timeout=30,
             message="the agent to log 'disk full'")
    time.sleep(1.0)  # it keeps waiting: nothing goes on, nothing fails
    assert ledger_of(book, instance_id) == ["s1"]
    assert agent.poll() is None, agents.output(agent)
    assert statuses(small_home, [instance_id]) == {instance_id: "running"}

    os.unlink(filler)
    wait_status(small_home, instance_id, "completed", timeout=30)
    entries = [w for w in ledger(book) if w[0] == instance_id]
    check_ledger_order(instance_id, entries)
    assert [w[1] for w in entries] == ["s1", "commit-cp1", "s2"]
    history = events(small_home, instance_id)
    kinds = [e["kind"] for e in history]
    assert kinds.count("checkpoint_saved") == 1
    assert kinds.count("instance_completed") == 1
    assert "instance_failed" not in kinds
    finished = [e["step_id"] for e in history if e["kind"] == "step_finished"]
    assert sorted(finished) == sorted(set(finished))  # each step finished once
    assert agents.stop(agent) == 0
    assert integrity(small_home) == "ok"
