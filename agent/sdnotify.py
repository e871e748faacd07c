"""systemd's readiness protocol: one datagram to $NOTIFY_SOCKET (no library needed)."""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send e.g. "READY=1"; False when not run by systemd (no NOTIFY_SOCKET) or when
    the message cannot be sent (a supervisor that has gone away does not stop the
    agent)."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return False
    if address.startswith("@"):  # an abstract socket
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
            sock.connect(address)
            sock.sendall(message.encode())
    except OSError:
        return False
    return True
