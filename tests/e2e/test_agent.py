"""The agent: start/status/stop, its socket and lock, concurrency, long homes, config, log."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from helpers import PROCCTL, SAMPLES, Procctl, wait_for

from procctl.agent import VERSION

WriteDefinition = Callable[..., Path]

SLEEPY = """
[process]
name = "{name}"
[process.params.seconds]
type = "float"
default = 2.0

[[steps]]
id = "nap"
task = "sleep"
with = {{ seconds = "{{{{ seconds }}}}" }}

[[steps]]
id = "done"
kind = "return"
value = "rested"
"""

FAILING = """
[process]
name = "failing"

[[steps]]
id = "missing-program"
task = "exec"
with = { argv = ["/nonexistent/program-that-is-not-there"] }
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def _status(procctl: Procctl) -> dict[str, Any]:
    return procctl.ok("agent", "status", "--json").json()


@pytest.fixture(scope="module")
def agent_pid(shared_procctl: Procctl) -> int:
    """Start the session's shared agent (or find it running); its pid."""
    started = shared_procctl.ok("agent", "start")
    match = re.search(r"agent pid (\d+)", started.out)
    assert match, str(started)
    return int(match.group(1))


# -- life cycle -------------------------------------------------------------------------


def test_agent_start_status_stop(procctl: Procctl) -> None:
    started = procctl.ok("agent", "start")
    match = re.search(r"Started agent pid (\d+)", started.out)
    assert match, str(started)
    pid = int(match.group(1))
    assert _alive(pid)

    status, again = procctl.many(("agent", "status", "--json"), ("agent", "start"))
    assert status.code == 0, str(status)
    data = status.json()
    assert data["running"] is True
    assert data["pid"] == pid
    assert data["home"] == str(procctl.home)
    assert data["version"] == VERSION
    assert isinstance(data["uptime_seconds"], int | float) and data["uptime_seconds"] >= 0
    assert data["instances_running"] == 0
    # A second start finds the running agent instead of starting another one.
    assert again.code == 0, str(again)
    assert f"Already running: agent pid {pid}" in again.out

    stopped = procctl.ok("agent", "stop")
    assert f"Stopped agent pid {pid}" in stopped.out
    wait_for(lambda: not _alive(pid), timeout=10, message="the agent process to exit")
    assert not (procctl.home / "agent.sock").exists()

    status, stop_again = procctl.many(("agent", "status", "--json"), ("agent", "stop"))
    assert status.code == 4, str(status)
    assert status.json() == {"running": False, "home": str(procctl.home)}
    assert stop_again.code == 0 and "No agent is running" in stop_again.out


def test_socket_and_home_are_private(shared_procctl: Procctl, agent_pid: int) -> None:
    mode = (shared_procctl.home / "agent.sock").stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(shared_procctl.home.stat().st_mode) == 0o700


def test_second_agent_on_the_same_home_is_refused(shared_procctl: Procctl,
                                                  agent_pid: int) -> None:
    pid = agent_pid
    second = shared_procctl("agent", "run", timeout=30)
    assert second.code == 4, str(second)
    assert f"another agent (pid {pid}) already runs" in second.err
    # The refused agent left the running one alone: same pid, socket still answering.
    assert (shared_procctl.home / "agent.sock").exists()
    assert _status(shared_procctl)["pid"] == pid


def test_agent_keeps_serving_after_instances_fail(
        shared_procctl: Procctl, agent_pid: int, write_definition: WriteDefinition) -> None:
    failing = write_definition(FAILING, "failing.toml")
    thrown = write_definition(
        '[process]\nname = "thrower"\n\n[[steps]]\nid = "t"\nkind = "throw"\nmessage = "no"\n',
        "thrower.toml")
    good = write_definition(SLEEPY.format(name="after-failures"), "good.toml")
    first, second = shared_procctl.many(("run", failing, "--wait", "--json"),
                                        ("run", thrown, "--wait", "--json"))
    assert first.code == 1, str(first)
    assert "program-that-is-not-there" in first.json()["error"]["message"]
    assert second.code == 1, str(second)
    summary = shared_procctl.ok("run", good, "--wait", "--json", "-p", "seconds=0").json()
    assert summary["status"] == "completed"
    assert summary["result"] == "rested"
    assert _status(shared_procctl)["pid"] == agent_pid


def test_instances_run_concurrently(shared_procctl: Procctl, agent_pid: int,
                                    write_definition: WriteDefinition) -> None:
    path = write_definition(SLEEPY.format(name="concurrent"))
    clients = [subprocess.Popen([PROCCTL, "run", str(path)], env=shared_procctl.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(10)]
    # `run` without --wait returns as soon as the agent took the instance: the first
    # client to exit marks (just after) the first submission.
    wait_for(lambda: any(c.poll() is not None for c in clients), timeout=30, interval=0.01,
             message="the first submission")
    first_submission = time.monotonic()
    for client in clients:
        out, err = client.communicate(timeout=30)
        assert client.returncode == 0, out + err
        assert "Started" in out, out + err

    def completed() -> list[dict[str, Any]] | None:
        rows = shared_procctl.ok("list", "--json", "--process", "concurrent").json()
        done = [row for row in rows if row["status"] == "completed"]
        return done if len(done) == 10 else None

    rows = wait_for(completed, timeout=30, interval=0.1, message="10 instances to complete")
    took = time.monotonic() - first_submission
    assert took < 8, f"10 instances of a 2 s sleep took {took:.1f}s: they did not overlap"
    started = [datetime.fromisoformat(row["started_at"]) for row in rows]
    ended = [datetime.fromisoformat(row["ended_at"]) for row in rows]
    for begin, end in zip(started, ended, strict=True):
        assert (end - begin).total_seconds() >= 2.0  # each one did sleep 2 s
    # By the agent's own clock too: one after another would take 20 s.
    assert (max(ended) - min(started)).total_seconds() < 8


# -- homes ------------------------------------------------------------------------------


def test_a_home_with_a_path_longer_than_sun_path_works(tmp_path: Path) -> None:
    home = tmp_path
    while len(os.fsencode(home / "agent.sock")) <= 120:
        home = home / ("nested-" + "d" * 30)
    home = home / "home"
    assert len(os.fsencode(home / "agent.sock")) > 108
    procctl = Procctl(home)
    try:
        summary = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json",
                             "-p", "who=long home").json()
        assert summary["status"] == "completed"
        assert summary["result"]["greeting"] == "Hello, long home!"
        assert stat.S_ISSOCK((home / "agent.sock").stat().st_mode)
        assert _status(procctl)["home"] == str(home)
        procctl.ok("agent", "stop")
        assert not (home / "agent.sock").exists()
    finally:
        procctl.stop_agent()


# -- config -----------------------------------------------------------------------------

DEFAULTS = {
    "signals_dir": "signals",
    "signal_buffer": "10m",
    "signal_scan_interval": "5s",
    "max_signal_bytes": 1048576,
    "shutdown_grace": "10s",
    "retention": "30d",
    "log_level": "info",
    "expression_timeout": "1s",
    "expression_max_size": 1000000,
    "store_url": "",
    "pool": "default",
    "lease": "30s",
}


def test_config_show_and_set(procctl: Procctl) -> None:
    assert procctl.ok("config", "show", "--json").json() == DEFAULTS
    changed = procctl.ok("config", "set", "signal_buffer", "5m")
    assert "signal_buffer = '5m'" in changed.out
    shown, table = procctl.many(("config", "show", "--json"), ("config", "show"))
    assert shown.json() == {**DEFAULTS, "signal_buffer": "5m"}
    row = next(line for line in table.out.splitlines() if line.startswith("signal_buffer"))
    assert row.split()[1:3] == ["5m", "10m"]  # the value, then the default


def test_config_set_refuses_bad_values_and_unknown_settings(procctl: Procctl) -> None:
    banana, unknown, negative = procctl.many(("config", "set", "signal_buffer", "banana"),
                                             ("config", "set", "nope", "1"),
                                             ("config", "set", "max_signal_bytes", "0"))
    assert banana.code == 2, str(banana)
    assert "signal_buffer" in banana.err and "'banana' is not a duration" in banana.err
    assert unknown.code == 2, str(unknown)
    assert "unknown setting 'nope'" in unknown.err
    assert "signal_buffer" in unknown.err  # the hint lists the known settings
    assert negative.code == 2, str(negative)
    # Nothing refused was written.
    assert procctl.ok("config", "show", "--json").json() == DEFAULTS


# -- foreground agent and its log -------------------------------------------------------


def test_foreground_agent_stops_cleanly_on_sigterm(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    agent = subprocess.Popen([PROCCTL, "agent", "run"], env=procctl.env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:

        def answering() -> Any:
            if agent.poll() is not None:
                return True  # it exited: fail below with its output
            status = procctl("agent", "status", "--json")
            return status.code == 0 and status.json()

        status = wait_for(answering, timeout=20, message="the foreground agent to answer")
        assert agent.poll() is None, agent.communicate()
        assert status["pid"] == agent.pid
        # An instance still running at SIGTERM gets the grace time to finish.
        path = write_definition(SLEEPY.format(name="draining"))
        instance_id = procctl.ok("run", path, "--json", "-p", "seconds=1").json()["instance_id"]
        agent.send_signal(signal.SIGTERM)
        out, err = agent.communicate(timeout=30)
    finally:
        if agent.poll() is None:
            agent.kill()
            agent.wait()
    assert agent.returncode == 0, out + err
    assert not (procctl.home / "agent.sock").exists()
    assert "agent stopped" in err
    shown = procctl.ok("show", instance_id, "--json").json()
    assert shown["status"] == "completed"
    assert shown["result"] == "rested"


def test_agent_log_is_json_lines(shared_procctl: Procctl, agent_pid: int,
                                 write_definition: WriteDefinition) -> None:
    path = write_definition("""
[process]
name = "logger"

[[steps]]
id = "say"
task = "log"
with = { message = "a line for the agent log" }
""")
    instance_id = shared_procctl.ok("run", path, "--wait", "--json").json()["instance_id"]
    log = shared_procctl.home / "agent.log"
    lines = [line for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all(isinstance(e, dict) and {"ts", "level", "msg"} <= e.keys() for e in entries)
    assert any(e["msg"] == "agent ready" and e.get("pid") == agent_pid for e in entries)
    said = [e for e in entries if e["msg"] == "a line for the agent log"]
    assert said and said[0]["instance"] == instance_id and said[0]["step"] == "say"
