"""`procctl follow` and `procctl wait`: attach to an instance whatever started it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from helpers import PROCCTL, SAMPLES, Procctl

WriteDefinition = Callable[[str, str], Path]

SLOW = """
[process]
name = "{name}"

[[steps]]
id = "count"
kind = "foreach"
items = "range(3)"
as = "n"
[[steps.body]]
id = "nap"
kind = "task"
task = "sleep"
with = {{ seconds = {seconds} }}

[[steps]]
id = "done"
kind = "return"
value = "ok"
"""


def _start(procctl: Procctl, definition: Path, *params: str) -> str:
    started = procctl.ok("run", definition, *params, "--json").json()
    instance_id: str = started["instance_id"]
    return instance_id


def test_follow_prints_the_steps_of_an_instance_started_elsewhere(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    instance_id = _start(procctl, write_definition(SLOW.format(name="slow", seconds=0.4),
                                                   "slow.toml"))
    followed = procctl.ok("follow", instance_id)
    lines = followed.out.splitlines()
    assert any("✓ nap" in line for line in lines), followed.out
    assert any("✓ done" in line for line in lines), followed.out
    assert "completed" in followed.out and "Result:" in followed.out
    # Once it has ended, following it again gives its outcome at once.
    again = procctl.ok("follow", instance_id)
    assert "completed" in again.out


def test_follow_json_is_one_object_per_line(procctl: Procctl,
                                            write_definition: WriteDefinition) -> None:
    instance_id = _start(procctl, write_definition(SLOW.format(name="slow-json", seconds=0.3),
                                                   "slow.toml"))
    followed = procctl.ok("follow", instance_id, "--json")
    objects = [json.loads(line) for line in followed.out.splitlines()]
    assert objects[-1]["kind"] == "outcome"
    assert objects[-1]["data"]["status"] == "completed"
    assert {"step_started", "step_finished"} <= {o["kind"] for o in objects[:-1]}


def test_ctrl_c_stops_following_not_the_instance(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    instance_id = _start(procctl, write_definition(SLOW.format(name="slow-int", seconds=1),
                                                   "slow.toml"))
    follower = subprocess.Popen([PROCCTL, "follow", instance_id], env=procctl.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert follower.stdout is not None
    # Its first step line: the command is following (a Ctrl-C before that, while Python
    # still starts up, is the interpreter's own).
    assert follower.stdout.readline()
    os.kill(follower.pid, signal.SIGINT)
    _, err = follower.communicate(timeout=20)
    assert follower.returncode == 130, err
    assert f"instance {instance_id} goes on" in err
    assert f"procctl follow {instance_id}" in err
    assert procctl.ok("wait", instance_id).code == 0
    assert procctl.ok("show", instance_id, "--json").json()["status"] == "completed"


def test_wait_exits_with_how_the_instance_stands(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    paused = _start(procctl, SAMPLES / "approval.toml", "-p", "order=WAIT-1")
    assert procctl("wait", paused).code == 10
    slow = _start(procctl, write_definition(SLOW.format(name="slow-wait", seconds=2),
                                            "slow.toml"))
    timed_out = procctl("wait", slow, "--timeout", "1s")
    assert timed_out.code == 12, str(timed_out)
    assert "still running after 1s" in timed_out.err
    assert timed_out.out == ""
    assert procctl("wait", slow).code == 0
    bad = procctl("wait", slow, "--timeout", "soon")
    assert bad.code == 2


def test_run_without_wait_points_at_follow(procctl: Procctl,
                                           write_definition: WriteDefinition) -> None:
    started = procctl.ok("run", write_definition(SLOW.format(name="slow-hint", seconds=0.1),
                                                 "slow.toml"))
    instance_id = started.out.split()[1]
    assert f"procctl follow {instance_id}" in started.err
