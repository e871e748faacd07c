"""Peers of different protocol versions: one clear line, never a traceback or a hang."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from helpers import Procctl, wait_for

from procctl.agent import protocol
from procctl.agent.client import AgentClient
from procctl.agent.errors import ProtocolMismatch
from procctl.agent.paths import HomePaths


def _ask(home: Path, message: dict[str, object]) -> dict[str, object]:
    with protocol.connect(home / "agent.sock", timeout=10) as sock, \
            sock.makefile("rb") as reader:
        sock.sendall((json.dumps(message) + "\n").encode())
        answer: dict[str, object] = json.loads(reader.readline())
        return answer


def test_an_older_client_gets_one_error_in_its_own_version(procctl: Procctl) -> None:
    procctl.ok("agent", "start")
    answer = _ask(procctl.home, {"v": 1, "op": "status"})
    assert answer["v"] == 1  # an older procctl reads its own version
    assert answer["type"] == "error"
    error = answer["error"]
    assert isinstance(error, dict) and error["kind"] == "version"
    assert f"speaks protocol {protocol.PROTOCOL_VERSION}" in str(error["message"])
    assert "different procctl versions" in str(error["message"])


def test_an_older_client_can_still_stop_a_newer_agent(procctl: Procctl) -> None:
    procctl.ok("agent", "start")
    answer = _ask(procctl.home, {"v": 1, "op": "stop"})
    assert answer == {"v": 1, "type": "result", "data": answer["data"]}
    wait_for(lambda: not (procctl.home / "agent.sock").exists(), timeout=30,
             message="the agent to stop")


def test_a_newer_client_talking_to_an_older_agent_says_so(tmp_path: Path) -> None:
    """The reply an agent of protocol 1 gives to any other version (its `decode`
    refused it with this error, in version 1), served on the home's socket."""
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    listener = protocol.bind(home / "agent.sock")
    listener.setblocking(True)

    def old_agent() -> None:
        conn, _ = listener.accept()
        with conn, conn.makefile("rb") as reader:
            reader.readline()
            conn.sendall(b'{"v": 1, "type": "error", "error": {"kind": "usage", "message":'
                         b' "protocol version 2 is not 1; the CLI and the agent are'
                         b' different procctl versions"}}\n')

    server = threading.Thread(target=old_agent, daemon=True)
    server.start()
    try:
        client = AgentClient(HomePaths.resolve(home))
        try:
            client.request("status", timeout=10)
        except ProtocolMismatch as exc:
            assert "speaks protocol 1 and this procctl speaks protocol 2" in exc.message
            assert exc.exit_code == 4
        else:
            raise AssertionError("no ProtocolMismatch")
    finally:
        server.join(timeout=10)
        listener.close()
