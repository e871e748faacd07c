"""The read commands never write the store: an older store is read as it is (with one
note that the next agent start migrates it), a newer one is refused (exit code 6), and
a store in a home the user cannot write to is read all the same."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import SAMPLES, Procctl, wait_for

from procctl.store import Store
from procctl.store.schema import SCHEMA_VERSION

SCHEMA1 = Path(__file__).parent.parent / "data" / "procctl-schema1.db"
NOTE = (f"has schema 1, this procctl uses {SCHEMA_VERSION}; the next `procctl agent "
        "start` migrates it.")
READS = (("list",), ("list", "--json"), ("show", "0123456789ab"), ("list-paused",),
         ("signals",), ("purge-expired", "--dry-run"))
NOBODY = 65534


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _side_files(home: Path) -> list[str]:
    return sorted(p.name for p in home.glob("procctl.db-*"))


def _older_home(home: Path) -> Path:
    home.mkdir(mode=0o700)
    db = home / "procctl.db"
    shutil.copy(SCHEMA1, db)
    return db


def test_read_commands_leave_an_older_store_untouched_and_say_the_agent_migrates_it(
        procctl: Procctl) -> None:
    db = _older_home(procctl.home)
    before = _digest(db)
    results = procctl.many(*READS, ("resume", "--correlation-id", "nobody-waits",
                                    "--data", "a=1"))
    for result in results[:-1]:
        assert result.code == 0, str(result)
        assert result.err.count(NOTE) == 1, str(result)
        assert str(db) in result.err
    listed, as_json, shown = results[0], results[1], results[2]
    assert "0123456789ab" in listed.out and "completed" in listed.out
    assert [row["instance_id"] for row in as_json.json()] == ["0123456789ab"]
    assert "Hello, world!" in shown.out
    refused = results[-1]
    assert refused.code == 7 and "no instance is paused at all" in refused.err, str(refused)
    assert _digest(db) == before
    assert _side_files(procctl.home) == []

    procctl.ok("agent", "start")  # migrates it
    running = procctl.ok("list")
    assert "0123456789ab" in running.out and "schema" not in running.err
    procctl.ok("agent", "stop")
    after = _digest(db)
    stopped = procctl.many(("list",), ("show", "0123456789ab"))
    for result in stopped:
        assert result.code == 0 and "schema" not in result.err, str(result)
    assert _digest(db) == after
    assert _side_files(procctl.home) == []


def test_a_newer_store_is_refused_naming_both_versions(procctl: Procctl) -> None:
    db = _older_home(procctl.home)
    connection = sqlite3.connect(db)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    before = _digest(db)
    for result in procctl.many(("list",), ("show", "0123456789ab"), ("list-paused",)):
        assert result.code == 6, str(result)
        assert (f"has schema version {SCHEMA_VERSION + 1}, newer than this procctl "
                f"understands ({SCHEMA_VERSION}): an older procctl cannot read a newer "
                "store") in result.err
    assert _digest(db) == before
    assert _side_files(procctl.home) == []


def test_after_a_sigkill_the_reader_sees_the_commits_left_in_the_wal(
        procctl: Procctl) -> None:
    """The agent killed with SIGKILL leaves its WAL files: `list` and `show` read the
    commits in them and leave the files to the next agent."""
    ran = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json").json()
    pid = procctl.agent_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or
             Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] == "Z",
             message="the killed agent to be gone")
    db = procctl.home / "procctl.db"
    assert _side_files(procctl.home) == ["procctl.db-shm", "procctl.db-wal"]
    before = _digest(db)
    listed, shown = procctl.many(("list", "--json"), ("show", ran["instance_id"], "--json"))
    assert listed.code == 0 and shown.code == 0, str(listed) + str(shown)
    assert [r["instance_id"] for r in listed.json()] == [ran["instance_id"]]
    assert shown.json()["status"] == "completed"
    assert _digest(db) == before
    procctl.ok("agent", "start")  # the next agent takes them in
    assert procctl.ok("show", ran["instance_id"], "--json").json()["status"] == "completed"


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A home outside pytest's private temporary directory (uid 65534 must reach it)."""
    parent = Path(tempfile.mkdtemp(prefix="procctl-ro-"))
    os.chmod(parent, 0o755)
    home = parent / "home"
    try:
        yield home
    finally:
        if home.exists():
            os.chmod(home, 0o700)
        shutil.rmtree(parent)


def _in_process(home: Path, *args: str) -> tuple[int, str]:
    """Run procctl in this (forked) process: exit code, stdout and stderr together."""
    from procctl.cli import app

    os.environ.update({"PROCCTL_HOME": str(home), "NO_COLOR": "1", "COLUMNS": "200"})
    sys.argv = ["procctl", *args]
    out = io.StringIO()
    sys.stdout = sys.stderr = out
    try:
        app.main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, out.getvalue()


def _as_nobody(home: Path, warm_up: Path, *args: str) -> tuple[int, str]:
    """`procctl ARGS` as uid 65534 (root ignores permissions), in a forked child: it
    runs the command once as root on `warm_up` first, so that every module it needs is
    imported (uid 65534 cannot read this Python's installation under /root)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        code, text = 70, ""
        try:
            os.close(read_end)
            _in_process(warm_up, *args)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            code, text = _in_process(home, *args)
        except BaseException as exc:
            text += f"\nchild failed: {exc!r}"
        finally:
            os.write(write_end, f"{code}\n{text}".encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read().decode()
    os.waitpid(pid, 0)
    code, _, text = data.partition("\n")
    return int(code), text


def _run_in_read_only_home(home: Path, warm_up: Path, *args: str) -> tuple[int, str]:
    if os.geteuid() == 0:
        return _as_nobody(home, warm_up, *args)
    result = Procctl(home)(*args)
    return result.code, result.out + result.err


@pytest.mark.parametrize("schema", ["older", "current"])
def test_a_store_in_a_home_nobody_may_write_is_read(
        nobody_home: Path, tmp_path: Path, schema: str) -> None:
    """A WAL-mode store with no WAL files (no agent running), in a home of mode 0500:
    read without creating them."""
    for home in (nobody_home, tmp_path / "warm-up"):
        db = _older_home(home)
        if schema == "current":
            Store(db).close()  # migrated and switched to WAL, as an agent leaves it
        else:
            connection = sqlite3.connect(db)
            connection.execute("PRAGMA journal_mode = WAL")
            connection.close()
        assert _side_files(home) == []
    if os.geteuid() == 0:
        for path in (nobody_home, *nobody_home.iterdir()):
            os.chown(path, NOBODY, NOBODY)
    db = nobody_home / "procctl.db"
    before = _digest(db)
    os.chmod(nobody_home, 0o500)
    for args in (("list",), ("show", "0123456789ab")):
        code, text = _run_in_read_only_home(nobody_home, tmp_path / "warm-up", *args)
        assert code == 0, text
        assert "0123456789ab" in text
        assert (NOTE in text) == (schema == "older"), text
    assert _digest(db) == before
    assert _side_files(nobody_home) == []
