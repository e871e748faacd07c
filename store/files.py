"""Files only their owner may touch: not a symbolic link, owned by this process's user,
not writable by its group or by others. The store checks its own files with it, and the
agent checks its home and the files in it the same way (`agent/paths.py`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from procctl.store.errors import StoreUnsafe

KINDS = {"file": stat.S_ISREG, "directory": stat.S_ISDIR, "socket": stat.S_ISSOCK}


def problem_with(info: os.stat_result, kind: str = "file") -> str | None:
    """What is wrong with a file of this `lstat`/`fstat`, or None when it is private."""
    if stat.S_ISLNK(info.st_mode):
        return "is a symbolic link"
    if not KINDS[kind](info.st_mode):
        return f"is not a {kind}"
    if info.st_uid != os.geteuid():
        return f"belongs to uid {info.st_uid}, not to this user (uid {os.geteuid()})"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"may be written by others (mode {stat.S_IMODE(info.st_mode):04o})"
    return None


def unsafe_reason(path: Path, kind: str = "file") -> str | None:
    """Why `path` must not be used, without following it if it is a link; None when it
    is private or does not exist."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return f"cannot exist: {path.parent} is not a directory"
    return problem_with(info, kind)


def check_store_files(db: Path) -> None:
    """The database and its WAL and shared-memory files, before SQLite opens them (it
    would follow a link and write wherever it points)."""
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        reason = unsafe_reason(path)
        if reason is not None:
            raise StoreUnsafe(
                f"the store file {path} {reason}; procctl does not open it",
                hint="the home and every file in it must belong to the user that runs "
                     "procctl and be writable only by that user; check who made this file",
            )
