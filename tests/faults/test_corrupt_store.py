"""A store damaged in the middle is refused, by the agent and by the CLI, with one line
naming the file and exit code 6, and the file is left byte for byte as it was.

The damage is the one an attack showed the agent accepting: 16 bytes of garbage over
the header of a page in the middle of a real store, made by running real instances.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import Procctl, Result

WriteDefinition = Callable[..., Path]

BUSY = """
[process]
name = "busy"

[process.params.rounds]
type = "int"
default = 30

[[steps]]
id = "each"
kind = "foreach"
items = "{{ range(rounds) | list }}"
as = "n"

    [[steps.body]]
    id = "note"
    task = "log"
    with = { message = "round {{ n }}: {{ 'x' * 400 }}" }
"""


def _damage_a_middle_page(db: Path) -> int:
    """16 bytes of garbage over the header of the middle one of the pages in use."""
    conn = sqlite3.connect(db)
    pages = [int(row[0]) for row in conn.execute(
        "SELECT pageno FROM dbstat WHERE pageno > 1 ORDER BY pageno")]
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    conn.close()
    page = pages[len(pages) // 2]
    fd = os.open(db, os.O_WRONLY)
    try:
        os.pwrite(fd, os.urandom(16), (page - 1) * page_size)
    finally:
        os.close(fd)
    return page


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _refused(result: Result, db: Path, *, hint: str = ".recover") -> None:
    """Exit code 6 and one error line that names the file and says what is wrong."""
    assert result.code == 6, str(result)
    errors = [line for line in result.err.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, str(result)
    assert f"the store {db} is corrupt" in errors[0], str(result)
    assert "Hint:" in result.err and hint in result.err, str(result)
    assert "Traceback" not in result.err and "procctl bug" not in result.err, str(result)


@pytest.fixture
def damaged(procctl: Procctl, write_definition: WriteDefinition) -> tuple[Path, Path]:
    """A home whose store was made by real instances, then damaged with no agent
    running. Returns (the store, the definition)."""
    definition = write_definition(BUSY)
    procctl.ok("run", definition, "--wait")
    procctl.ok("run", definition, "--wait", "-p", "rounds=20")
    procctl.ok("agent", "stop")
    db = procctl.home / "procctl.db"
    assert not db.with_name("procctl.db-wal").exists()
    _damage_a_middle_page(db)
    return db, definition


def test_a_store_damaged_in_the_middle_is_refused_and_left_untouched(
        procctl: Procctl, damaged: tuple[Path, Path]) -> None:
    db, definition = damaged
    before = _digest(db)
    _refused(procctl("agent", "run", timeout=60), db)
    # A background agent: its error line, and how to see the rest (the hint above).
    _refused(procctl("agent", "start", timeout=60), db, hint="agent run")
    listed, paused, autostarted = procctl.many(
        ("list",), ("list-paused",), ("run", definition))
    _refused(listed, db)
    _refused(paused, db)
    _refused(autostarted, db, hint="agent run")
    assert _digest(db) == before, "the damaged store was written to"
    assert not (procctl.home / "agent.sock").exists()
    assert not db.with_name("procctl.db-wal").exists()
