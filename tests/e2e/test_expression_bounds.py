"""An expression cannot stall the agent: hostile templates fail their own step, within
their bounds, while `agent status` answers and other instances run to their end."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Procctl, instance_state, show_json, wait_for, wait_settled

WriteDefinition = Callable[..., Path]

# 10^12 iterations: the text it makes passes the size bound first (a million x's)...
NESTED_LOOP = ("{% for a in range(10000) %}{% for b in range(10000) %}"
               "{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}")
# ... and without the x, only the time bound stops it.
SILENT_LOOP = NESTED_LOOP.replace("x", "")

HOSTILE_LOOP = f"""
[process]
name = "hostile-loop"

[[steps]]
id = "spin"
task = "log"
with = {{ message = "{NESTED_LOOP}" }}
"""

WIDE_FORMAT = """
[process]
name = "wide-format"

[[steps]]
id = "widen"
kind = "set"
values = { wide = "{{ '{0:{1}}'.format(1, '>99999999') }}" }
"""

# Keeps the agent busy with hostile evaluations for the whole test: each iteration's
# spin fails at the time bound and the scope catches it.
CHURN = f"""
[process]
name = "churn"

[[steps]]
id = "churn"
kind = "while"
condition = "true"
max_iterations = 50

    [[steps.body]]
    id = "attempt"
    kind = "scope"

        [[steps.body.do]]
        id = "spin"
        task = "log"
        with = {{ message = "{SILENT_LOOP}" }}

        [[steps.body.catch]]
        id = "caught"
        kind = "set"
        values = {{ last = "{{{{ error.kind }}}}" }}
"""

GOOD = """
[process]
name = "good"

[[steps]]
id = "count"
kind = "foreach"
items = "range(20)"
as = "n"

    [[steps.body]]
    id = "square"
    kind = "set"
    values = { sq = "{{ n * n }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['count'] | length }}"
"""


def _start(procctl: Procctl, path: Path) -> str:
    instance_id: str = procctl.ok("run", path, "--json").json()["instance_id"]
    return instance_id


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM in /proc/<pid>/status")


def _error(procctl: Procctl, instance_id: str) -> dict[str, Any]:
    error: dict[str, Any] = wait_settled(procctl, instance_id, "failed")["error"]
    return error


def test_hostile_expressions_fail_their_step_while_the_agent_goes_on(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    procctl.ok("config", "set", "expression_timeout", "0.3s")
    procctl.ok("config", "set", "shutdown_grace", "1s")  # the churn is still running then
    started = procctl.ok("agent", "start")
    pid = procctl.agent_pid()
    assert pid is not None, str(started)
    churn = _start(procctl, write_definition(CHURN, "churn.toml"))

    # Meanwhile: status answers at once (a `procctl` command itself takes about half a
    # second to start on a busy machine), other instances run to their end.
    began = time.monotonic()
    assert procctl.ok("agent", "status", "--json").json()["running"] is True
    assert time.monotonic() - began < 1.5, "agent status took too long"
    good = write_definition(GOOD, "good.toml")
    assert procctl.ok("run", good, "--wait", "--json").json()["result"] == 20
    loop = _start(procctl, write_definition(HOSTILE_LOOP, "loop.toml"))
    wide = _start(procctl, write_definition(WIDE_FORMAT, "wide.toml"))

    error = _error(procctl, loop)
    assert error["kind"] == "expression"
    assert error["step_id"] == "spin"
    assert re.search(r"not allowed: (the text would be larger than 1,000,000 characters"
                     r" \(the agent setting expression_max_size\)|it ran longer than 0\.3 s"
                     r" \(the agent setting expression_timeout\))", error["message"])

    error = _error(procctl, wide)
    assert error["kind"] == "expression"
    assert error["step_id"] == "widen"
    assert "would be larger than 1,000,000 characters" in error["message"]
    assert "expression_max_size" in error["message"]
    assert _peak_rss_mb(pid) < 400

    # All that time the churn went on, each of its evaluations failed at the time bound.
    assert instance_state(procctl, churn)[0] == "running"
    caught = [event["data"] for event in show_json(procctl, churn)["history"]
              if event["kind"] == "step_failed" and event["step_id"] == "spin"]
    assert caught
    for data in caught:
        assert data["kind"] == "expression"
        assert "not allowed: it ran longer than 0.3 s (the agent setting " \
               "expression_timeout)" in data["message"]


def test_sigterm_during_a_hostile_expression_stops_the_agent_promptly(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    procctl.ok("agent", "start")
    pid = procctl.agent_pid()
    assert pid is not None
    silent = HOSTILE_LOOP.replace(NESTED_LOOP, SILENT_LOOP)
    loop = _start(procctl, write_definition(silent, "loop.toml"))
    wait_for(lambda: any(event["kind"] == "step_started"
                         for event in show_json(procctl, loop)["history"]),
             message="the hostile step to start")
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not Path(f"/proc/{pid}").exists()
             or Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] == "Z",
             timeout=10, message="the agent to exit")
    assert time.monotonic() - began < 3
    # The evaluation ended at its bound (1 s), and so did the instance, before the agent.
    error = show_json(procctl, loop)["error"]
    assert error["kind"] == "expression" and "longer than 1 s" in error["message"]

