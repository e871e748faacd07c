"""The socket protocol between the CLI and the agent: one JSON object per line.

Request:  {"v": 1, "op": "<name>", ...arguments}
Replies:  {"v": 1, "type": "event", "event": {...}}   (zero or more, for waiting ops)
          {"v": 1, "type": "result", "data": {...}}   (the last line)
          {"v": 1, "type": "error", "error": {"kind", "message", "hint"}}
A peer that sees another `v` refuses the message with a clear error.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PROTOCOL_VERSION = 1
MAX_LINE = 64 * 1024 * 1024
# sun_path holds 108 bytes on Linux, 104 on macOS; stay clear of both.
_SUN_PATH_MAX = 100


def encode(message: dict[str, Any]) -> bytes:
    return (json.dumps({"v": PROTOCOL_VERSION, **message}, ensure_ascii=False) + "\n").encode()


def decode(line: bytes) -> dict[str, Any]:
    message = json.loads(line)
    if not isinstance(message, dict):
        raise ValueError("a protocol message must be a JSON object")
    if message.get("v") != PROTOCOL_VERSION:
        raise ValueError(
            f"protocol version {message.get('v')!r} is not {PROTOCOL_VERSION}; "
            "the CLI and the agent are different procctl versions"
        )
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
