"""The signals directory protocol: read a signal file safely, then file it away.

Writers create `<name>.tmp` (or a name starting with "."), write, and rename it to
`<name>.json` in the same directory. A signal file is one JSON object:
`{"correlation_id": "...", "payload": {...}, "signal_id": "...", "set": {...}}`,
where only correlation_id is required. Each file read ends in `processed/`, or in
`rejected/` beside `<name>.error.json` saying why. The agent deletes nothing
(`procctl signals --clear` does).
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import re
import stat
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from difflib import get_close_matches
from pathlib import Path
from typing import Any

from procctl.agent import bounded_json
from procctl.agent.atomic import write_bytes_atomically
from procctl.store.clock import utc_now

KEYS = ("correlation_id", "payload", "signal_id", "set", "sender")
PROCESSED = "processed"
REJECTED = "rejected"
#: a signal_id: what `procctl resume --signal-id`, signal files and `signal` steps accept
SIGNAL_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}")
SIGNAL_ID_RULE = ("1 to 128 characters: ASCII letters, digits and . _ - : @, "
                  "starting with a letter or a digit")
#: longest name (in bytes) of a file in processed/ or rejected/: its NAME.error.json and
#: the temporary name that is written first (".NAME.error.json.XXXXXXXX.tmp") must still
#: fit in the 255 bytes a file name may have
MAX_FILED_NAME = 200


class SignalRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SignalFile:
    path: Path
    correlation_id: str
    payload: Any
    signal_id: str | None
    set_values: dict[str, Any] | None
    sender: str | None
    #: identifies this file by what it says: its name, content and modification time.
    #: A file read again after a crash, before it was moved, is then recognised instead
    #: of applied twice; a new file with other content never is.
    file_key: str
    #: when the file was last written (ISO-8601 UTC, as the store keeps times)
    modified_at: str = ""


def is_signal_name(name: str) -> bool:
    """Names the agent looks at: not temporary (leading "." or ".tmp" suffix)."""
    return not name.startswith(".") and not name.endswith(".tmp")


def signal_id_problem(signal_id: object) -> str | None:
    """Why `signal_id` is not acceptable, or None when it is."""
    if not isinstance(signal_id, str) or not signal_id:
        return "signal_id must be a non-empty string"
    if SIGNAL_ID.fullmatch(signal_id) is None:
        shown = signal_id if len(signal_id) <= 40 else signal_id[:40] + "..."
        return (f"signal_id {shown!r} is not valid ({len(signal_id)} characters): "
                f"{SIGNAL_ID_RULE}")
    return None


def printable_name(name: str) -> str:
    """A file name as text that can be stored and printed: bytes that are not UTF-8
    (kept by Python as surrogates) are shown as \\xNN."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def file_key(name: str, modified_ns: int, data: bytes) -> str:
    """The ID of a signal file without a signal_id: a digest of its name, modification
    time and content. Not its inode: a new file may get the inode of one moved away."""
    digest = hashlib.sha256()
    for part in (os.fsencode(name), str(modified_ns).encode(), data):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return f"file:{digest.hexdigest()[:32]}"


def read_signal_file(path: Path, max_bytes: int) -> SignalFile:
    """Open without following links and check before trusting a byte of it."""
    if not path.name.endswith(".json"):
        raise SignalRejected(f"odd file name {path.name!r}: signal files end in .json "
                             "(write NAME.tmp, then rename it to NAME.json)")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SignalRejected("a symbolic link, not a regular file") from None
        raise SignalRejected(f"cannot open: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a directory" if stat.S_ISDIR(info.st_mode)
                    else "a special file (FIFO, socket or device)")
            raise SignalRejected(f"{kind}, not a regular file")
        if info.st_uid != os.geteuid():
            raise SignalRejected(f"owned by uid {info.st_uid}, not the agent's user "
                                 f"({os.geteuid()})")
        if info.st_nlink != 1:
            raise SignalRejected(f"has {info.st_nlink} hard links; a signal file must have one")
        if info.st_size > max_bytes:
            raise SignalRejected(f"too large: {info.st_size} bytes, the limit is {max_bytes}")
        data = os.read(fd, max_bytes + 1)
        if len(data) > max_bytes:
            raise SignalRejected(f"too large: over the limit of {max_bytes} bytes")
    finally:
        os.close(fd)
    key = file_key(path.name, info.st_mtime_ns, data)
    modified = datetime.fromtimestamp(info.st_mtime_ns / 1e9, UTC)
    return dataclasses.replace(parse_signal(data, path, key),
                               modified_at=modified.isoformat(timespec="microseconds"))


def parse_signal(data: bytes, path: Path, repeat_key: str) -> SignalFile:
    try:
        document = bounded_json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SignalRejected(f"not JSON: {exc}") from None
    except bounded_json.JSONLimit as exc:
        raise SignalRejected(str(exc)) from None
    if not isinstance(document, dict):
        raise SignalRejected("not a JSON object")
    for key in document:
        if key not in KEYS:
            close = get_close_matches(key, KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise SignalRejected(f"unknown key {key!r}{hint}; keys are {', '.join(KEYS)}")
    correlation_id = document.get("correlation_id")
    if not isinstance(correlation_id, str) or not correlation_id.strip():
        raise SignalRejected("no correlation_id (a non-empty string is required)")
    signal_id = document.get("signal_id")
    problem = None if signal_id is None else signal_id_problem(signal_id)
    if problem is not None:
        raise SignalRejected(problem)
    set_values = document.get("set")
    if set_values is not None and not isinstance(set_values, dict):
        raise SignalRejected("set must be a JSON object of variable names and values")
    sender = document.get("sender")
    return SignalFile(path, correlation_id, document.get("payload"), signal_id,
                      set_values, None if sender is None else str(sender), repeat_key)


def _filed_name(directory: Path, name: str) -> Path:
    """Where a file named `name` goes in `directory`: that name when it is free and
    short enough (MAX_FILED_NAME), else a shortened one with a unique number."""
    if len(os.fsencode(name)) <= MAX_FILED_NAME:
        target = directory / name
        if not target.exists() and not target.is_symlink():
            return target
    stem, dot, suffix = name.rpartition(".")
    if not dot or not stem or len(suffix) > 16:
        stem, suffix = name, ""
    extension = f".{suffix}" if suffix else ""
    while True:
        tail = f"-{time.time_ns()}{extension}"
        room = MAX_FILED_NAME - len(os.fsencode(tail))
        short = os.fsencode(stem)[:room].decode("utf-8", "ignore") or "signal"
        target = directory / f"{short}{tail}"
        if not target.exists() and not target.is_symlink():
            return target


def settle(path: Path, reason: str | None = None) -> Path | None:
    """Move a signal file to processed/ (reason None) or rejected/ with an error file.

    Returns where it went, or None when it was already gone. A name too long to sit
    beside its error file is shortened; the error file names the original.
    """
    folder = path.parent / (PROCESSED if reason is None else REJECTED)
    folder.mkdir(mode=0o700, exist_ok=True)
    target = _filed_name(folder, path.name)
    try:
        os.rename(path, target)
    except FileNotFoundError:
        return None
    if reason is not None:
        error = {"file": printable_name(path.name), "moved_to": printable_name(str(target)),
                 "reason": reason, "rejected_at": utc_now()}
        write_atomically(folder / f"{target.name}.error.json", error)
    return target


def encode_document(document: dict[str, Any]) -> bytes:
    """A JSON document as the bytes of its file (text that is not valid Unicode, such
    as a command-line argument in another encoding, is written as an escape)."""
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "backslashreplace")


def write_atomically(path: Path, document: dict[str, Any]) -> None:
    """Write a JSON document under a temporary name, then rename it into place (the
    protocol's own way: the agent never reads it half written)."""
    write_bytes_atomically(path, encode_document(document))


def scan(directory: Path) -> list[Path]:
    """Signal files waiting in the directory, oldest first."""
    try:
        entries = [e for e in os.scandir(directory) if is_signal_name(e.name)
                   and e.name not in (PROCESSED, REJECTED)]
    except FileNotFoundError:
        return []
    def age(entry: os.DirEntry[str]) -> float:
        try:
            return entry.stat(follow_symlinks=False).st_mtime
        except OSError:
            return 0.0
    return [Path(e.path) for e in sorted(entries, key=age)]
