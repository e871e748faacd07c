"""The socket protocol between the CLI and the agent: one JSON object per line, each a
typed message of agent/messages.py.

Request:  {"v": 2, "op": "<name>", ...fields}
Replies:  {"v": 2, "type": "event", "event": {...}}   (zero or more, for following ops)
          {"v": 2, "type": "result", "data": {...}}   (the last line)
          {"v": 2, "type": "error", "error": {"kind", "message", "hint"}}
A peer of another version is answered in its own version with one error (kind
`version`) that says both versions and what to do, so an older or a newer procctl
prints one clear line.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: 2: typed messages (agent/messages.py); `watch` became `follow`
PROTOCOL_VERSION = 2
MAX_LINE = 64 * 1024 * 1024
# sun_path holds 108 bytes on Linux, 104 on macOS; stay clear of both.
_SUN_PATH_MAX = 100


class VersionMismatch(ValueError):
    """A message of another protocol version (`version`: the peer's, if it said)."""

    def __init__(self, version: Any) -> None:
        super().__init__(f"protocol version {version!r} is not {PROTOCOL_VERSION}")
        self.version = version


def encode(message: dict[str, Any], version: Any = PROTOCOL_VERSION) -> bytes:
    return (json.dumps({"v": version, **message}, ensure_ascii=False) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    """A message of this protocol version (VersionMismatch for another, ValueError for
    what is not a message)."""
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol message must be a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise VersionMismatch(message.get("v"))
    return message


@contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for `path` that fits in sun_path.

    Long homes (pytest's temporary directories reach the limit easily) are reached
    through /proc/self/fd/N/, where N is an open descriptor of the socket's directory.
    """
    text = os.fsencode(path)
    if len(text) < _SUN_PATH_MAX or not Path("/proc/self/fd").is_dir():
        yield str(path)
        return
    fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def connect(path: Path, timeout: float | None = None) -> socket.socket:
    """A connected client socket (raises OSError when nothing listens)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        with socket_address(path) as address:
            sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def bind(path: Path) -> socket.socket:
    """A listening socket at `path`, mode 0600 (readable and writable by the owner only)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        with socket_address(path) as address:
            sock.bind(address)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    sock.listen(128)
    sock.setblocking(False)
    return sock
