"""`procctl cancel ID [--reason TEXT]` through the real command: a running instance stops
at once with its finally blocks run (agent), a paused one is cancelled in the store with
no agent running, an ended one is refused (exit 8), an unknown ID is exit 5; `show` and
`list` show `cancelled`; docs/cli.md's examples are this output.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import REPO, Procctl, show_json, unique_key, wait_for

from procctl.agent import decisions
from procctl.agent.messages import REQUESTS
from procctl.store.records import Status

CLI_MD = REPO / "docs" / "cli.md"
#: the protocol has a `cancel` request (agent/messages.py CancelRequest, dispatched to
#: agent/handlers/cancel.py): until it does, the agent's part is not tested here
AGENT_CANCELS = "cancel" in REQUESTS
needs_agent_cancel = pytest.mark.skipif(not AGENT_CANCELS,
                                        reason="the protocol has no cancel request yet")
_MASKS = ((re.compile(r"\b[0-9a-f]{12}\b"), "ID"),
          (re.compile(r"\b[0-9a-f]{8}\b"), "PREFIX"),
          (re.compile(r"cli:[^\s@]+@[^\s:,)\"]+"), "cli:USER@HOST"),
          (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+\+00:00"), "ISO-TIME"))

GATE = """
[process]
name = "{name}"

[[steps]]
id = "approve"
kind = "checkpoint"
correlation_id = "approval-{key}"

[[steps]]
id = "ship"
task = "log"
with = {{ message = "shipped" }}
"""

SLOW = """
[process]
name = "{name}"

[[steps]]
id = "work"
kind = "scope"

    [[steps.do]]
    id = "build"
    task = "exec"
    with = {{ argv = ["sh", "-c", "echo $$ > {pid}; exec sleep 60"] }}

    [[steps.finally]]
    id = "clean-up"
    task = "log"
    with = {{ message = "cleaned up" }}
"""


def masked(text: str) -> str:
    for pattern, mask in _MASKS:
        text = pattern.sub(mask, text)
    return text


def doc_examples() -> dict[str, str]:
    """docs/cli.md's `<!-- output: cancel NAME -->` blocks."""
    found = re.finditer(r"<!-- output: cancel (?P<name>[a-z-]+) -->\n```[a-z]*\n"
                        r"(?P<body>.*?)```", CLI_MD.read_text(), re.DOTALL)
    return {m["name"]: m["body"] for m in found}


def started(procctl: Procctl, path: Path, status: str) -> str:
    """`run --json` (no wait), then the instance's ID once it has `status`."""
    instance = str(procctl.ok("run", path, "--json").json()["instance_id"])
    wait_for(lambda: show_json(procctl, instance)["status"] == status,
             message=f"instance {instance} to be {status}")
    return instance


def paused(procctl: Procctl, write_definition: Callable[[str, str], Path],
           name: str = "order") -> tuple[str, str]:
    key = unique_key()
    path = write_definition(GATE.format(name=name, key=key), f"{name}-{key}.toml")
    return started(procctl, path, "paused"), f"approval-{key}"


def test_a_paused_instance_is_cancelled_with_no_agent_running(
        procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    instance, correlation = paused(procctl, write_definition)
    procctl.stop_agent()
    done = procctl("cancel", instance[:8], "--reason", "ordered twice")
    assert done.code == 0, str(done)
    assert masked(done.out.splitlines()[0]) == \
        "Cancelled instance ID (order) by cli:USER@HOST: ordered twice"
    assert not (procctl.home / "agent.sock").exists()  # no agent was started for it
    shown = show_json(procctl, instance)
    assert shown["status"] == Status.CANCELLED and shown["checkpoint"] is None
    assert shown["error"]["kind"] == "cancelled"
    assert shown["error"]["reason"] == "ordered twice"
    assert re.fullmatch(r"cli:[^@\s]+@\S+", shown["error"]["by"])
    assert shown["history"][-1]["kind"] == "instance_cancelled"
    assert "retry_command" not in shown and "resume_command" not in shown
    listed = procctl.ok("list", "--status", "cancelled", "--json").json()
    assert [i["instance_id"] for i in listed] == [instance]
    assert "cancelled" in procctl.ok("list").out

    # a signal for it afterwards is refused, with the cancellation
    refused = procctl("resume", "-c", correlation, "--data", "approved=true")
    assert refused.code == 7, str(refused)
    if Status.CANCELLED in decisions.TERMINAL:  # agent/decisions.py's gone_reason
        assert "cancelled by cli:" in refused.err and "ordered twice" in refused.err

    again = procctl("cancel", instance)
    assert again.code == 8, str(again)
    assert again.err.splitlines()[0].startswith(
        f"Error: instance {instance} is cancelled already: it was cancelled by cli:")
    nobody = procctl("cancel", "feedfacecafe")
    assert nobody.code == 5, str(nobody)
    assert "no instance 'feedfacecafe'" in nobody.err

    # docs/cli.md shows this output (IDs and the user and host masked)
    real = {"paused": f"$ procctl cancel {instance[:8]} --reason 'ordered twice'\n{done.out}",
            "refused": f"$ procctl cancel {instance}\n{again.err}"}
    examples = doc_examples()
    assert {name: masked(examples[name]) for name in real} == {
        name: masked(text) for name, text in real.items()}, "\n".join(real.values())


def test_cancel_json_and_a_completed_instance_refused(
        procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    instance, _ = paused(procctl, write_definition, "order-json")
    procctl.stop_agent()
    data = procctl.ok("cancel", instance, "--json").json()
    assert data["instance_id"] == instance and data["status"] == Status.CANCELLED
    assert data["cancelled_from"] == "paused" and data["finally_ran"] is False
    assert data["error"]["reason"] is None and data["children_cancelled"] == []
    completed = started(procctl, REPO / "samples" / "hello.toml", "completed")
    procctl.stop_agent()
    refused = procctl("cancel", completed)
    assert refused.code == 8, str(refused)
    assert refused.err.splitlines() == [
        f"Error: instance {completed} is completed; only a running or paused instance "
        "can be cancelled",
        f"Hint: procctl show {completed}"]
    too_long = procctl("cancel", instance, "--reason", "x" * 501)
    assert too_long.code == 2 and "--reason is 501 characters long" in too_long.err


@needs_agent_cancel
def test_a_running_exec_stops_at_once_and_its_finally_runs(
        shared_procctl: Procctl, write_definition: Callable[[str, str], Path],
        tmp_path: Path) -> None:
    key = unique_key()
    pid_file = tmp_path / "pid"
    path = write_definition(SLOW.format(name="nightly-build", pid=pid_file),
                            f"slow-{key}.toml")
    instance = shared_procctl.ok("run", path, "--json").json()["instance_id"]
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                       message="the exec step's program to start"))
    began = time.monotonic()
    done = shared_procctl("cancel", instance, "--reason", "wrong branch")
    assert done.code == 0, str(done)
    assert time.monotonic() - began < 10
    assert done.out.splitlines()[1] == ("It was running: its step was stopped and the "
                                        "finally blocks of its scopes ran.")
    assert not Path(f"/proc/{pid}").exists() or \
        Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] == "Z"
    shown = show_json(shared_procctl, instance)
    assert shown["status"] == Status.CANCELLED
    assert [e["data"]["message"] for e in shown["history"] if e["kind"] == "log"] == \
        ["cleaned up"]
    assert "cancelled" in shared_procctl.ok("show", instance).out

    real = {"running": f"$ procctl cancel {instance} --reason 'wrong branch'\n{done.out}"}
    examples = doc_examples()
    assert {name: masked(examples[name]) for name in real} == {
        name: masked(text) for name, text in real.items()}, "\n".join(real.values())


@needs_agent_cancel
def test_a_paused_instance_is_cancelled_through_the_agent(
        shared_procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    instance, _ = paused(shared_procctl, write_definition, f"order-{unique_key()}")
    data = shared_procctl.ok("cancel", instance, "--json").json()
    assert data["status"] == Status.CANCELLED and data["cancelled_from"] == "paused"
    assert show_json(shared_procctl, instance)["checkpoint"] is None
