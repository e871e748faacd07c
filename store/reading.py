"""Opening the store only to read: nothing is created, switched on, migrated or left behind.

SQLite's `mode=ro` never writes the database file, but a database in WAL mode is read
through its `-wal` and `-shm` files: when they are absent (no agent has the store
open), a `mode=ro` connection creates them and, unable to checkpoint, leaves them
behind. So when there is no `-wal` file, the file is read with `immutable=1` (no locks,
no WAL files): then the whole content is in the database file, and nothing but a
writer that opens it meanwhile (an agent starting) can change it. `ReadOnlyFile`
notes what the files were like at open, and `changed` says whether such a writer came;
the reader then reads again, with `mode=ro` and the files that writer made.

A store of an older schema is shown as the current one through TEMP views (they live
in the connection's memory, never in the file): a column added later reads as its
default (NULL), a table added later is empty.
"""

from __future__ import annotations

import functools
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from procctl.store.schema import MIGRATIONS


def _signature(path: Path) -> tuple[int, ...] | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _in_wal_mode(path: Path) -> bool:
    """Does the database header say WAL (its read and write versions are 2)?"""
    try:
        with open(path, "rb") as file:
            header = file.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2


class ReadOnlyFile:
    """How to open `path` to read it, decided from its files at this moment."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self._before = _signature(path)
        #: a file in WAL mode without its WAL file: read the database file alone,
        #: without locks (a file in rollback mode is read with SQLite's own locks)
        self.immutable = _in_wal_mode(path) and not self.wal.exists()

    @property
    def uri(self) -> str:
        extra = "&immutable=1" if self.immutable else ""
        return f"file:{quote(str(self.path.absolute()))}?mode=ro{extra}"

    def changed(self) -> bool:
        """Did a writer open the file since it was opened immutable? (Its WAL file
        appeared, or the database file itself changed.) What was read may then be
        torn: read it again."""
        if not self.immutable:
            return False
        return self.wal.exists() or _signature(self.path) != self._before


@functools.cache
def current_tables() -> dict[str, tuple[tuple[str, str | None], ...]]:
    """Every table of the current schema: its columns and their default (SQL text)."""
    db = sqlite3.connect(":memory:")
    try:
        for migration in MIGRATIONS:
            db.executescript(migration)
        names = [str(row[0]) for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'"
            " AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {name: tuple((str(row[1]), row[4]) for row in
                            db.execute(f"PRAGMA table_info({name})"))
                for name in names}
    finally:
        db.close()


def show_as_current(db: sqlite3.Connection) -> None:
    """Put TEMP views over the tables of an older schema, so that every query of the
    store reads the current tables and columns (TEMP comes before `main` when a name is
    not qualified). Nothing is written to the file."""
    db.execute("PRAGMA temp_store = MEMORY")
    for table, columns in current_tables().items():
        have = {str(row[1]) for row in db.execute(f"PRAGMA main.table_info({table})")}
        if have and all(name in have for name, _ in columns):
            continue
        shown = ", ".join(name if name in have else f"{default or 'NULL'} AS {name}"
                          for name, default in columns)
        source = f"FROM main.{table}" if have else "WHERE 0"
        db.execute(f"CREATE TEMP VIEW {table} AS SELECT {shown} {source}")
