"""An agent on PostgreSQL whose server goes away waits for it, says so, and goes on."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from helpers import PROCCTL, SAMPLES, Procctl, run_paused, wait_for
from pg_server import PgServer


def _status(runner: Procctl) -> tuple[int, dict[str, Any]]:
    result = runner("agent", "status", "--json")
    return result.code, result.json()


def test_an_agent_waits_for_a_stopped_server_and_goes_on_when_it_is_back(
        tmp_path: Path, pg_url: str, pg_server: PgServer) -> None:
    runner = Procctl(tmp_path / "home")
    runner.env["PROCCTL_STORE_URL"] = pg_url
    try:
        paused = run_paused(runner, SAMPLES / "approval.toml", "-p", "order=DOWN-1")
        pg_server.stop()
        # The clock's next store call meets the closed server: the agent waits for it.
        code, status = wait_for(
            lambda: (lambda s: s if s[1]["state"] == "waiting_for_store" else None)(
                _status(runner)), timeout=30, message="agent state waiting_for_store")
        assert code == 9
        assert status["store_wait"]["since"]
        human = runner("agent", "status")
        assert human.code == 9
        assert "the store does not answer" in human.out + human.err
        pg_server.start()
        wait_for(lambda: _status(runner)[1]["state"] == "ready", timeout=30,
                 message="agent ready again")
        done = runner("resume", "--correlation-id", "approval-DOWN-1", "--data",
                      "approved=true", "--data", "by=ada", "--json")
        assert done.code == 0, str(done)
        shown = runner.ok("show", paused["instance_id"], "--json").json()
        assert shown["status"] == "completed"
    finally:
        pg_server.ensure_running()
        runner.stop_agent()


def test_sigterm_stops_an_agent_whose_server_is_down(
        tmp_path: Path, pg_url: str, pg_server: PgServer) -> None:
    """A stopping agent tries once to give its lease back; it does not wait for the
    server (the lease runs out by itself)."""
    runner = Procctl(tmp_path / "home")
    runner.env["PROCCTL_STORE_URL"] = pg_url
    agent = subprocess.Popen([PROCCTL, "agent", "run"], env=runner.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for(lambda: runner("agent", "status", "--json").code == 0, timeout=30,
                 message="agent answering")
        pg_server.stop()
        wait_for(lambda: runner("agent", "status", "--json").json()["state"]
                 == "waiting_for_store", timeout=30, message="agent waiting for the store")
        started = time.monotonic()
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=30)
        assert time.monotonic() - started < 15
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
        pg_server.ensure_running()
