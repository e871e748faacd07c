"""A checkpoint inside a block survives the agent process being killed (SIGKILL, no
shutdown at all): the real `procctl resume` then goes on at the same place, with the
block's state intact and nothing before the pause run twice. A checkpoint in each kind
of block (if, switch, inclusive, foreach, while, scope do / catch / finally), across a
restart, is checked in-process on the real engine: tests/engine/test_checkpoint_blocks.py.

`procctl resume` with no agent running writes the signal and returns ("queued"); the
next agent applies it when it starts. Some tests resume that way, the others start
the agent first and follow the resume to its end.

Each test has a home of its own, since each stops or kills its agent.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Procctl, Result, instance_state, run_paused, show_json, wait_for

WriteDefinition = Callable[..., Path]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


def halt_agent(procctl: Procctl, kill: bool) -> None:
    """Stop the home's agent cleanly, or SIGKILL it (no shutdown at all)."""
    pid = procctl.agent_pid()
    assert pid is not None and _alive(pid), "no agent runs"
    if kill:
        os.kill(pid, signal.SIGKILL)
    else:
        procctl.ok("agent", "stop")
    wait_for(lambda: not _alive(pid), timeout=20, message=f"agent {pid} to die")


def applied(result: Result) -> dict[str, Any]:
    """The instance summary `resume --json` printed."""
    outcome = result.json()
    assert outcome["signal"]["status"] == "applied", outcome
    instance: dict[str, Any] = outcome["instance"]
    return instance


def resume(procctl: Procctl, instance_id: str, correlation_id: str, *args: str,
           queued: bool, status: str = "completed") -> dict[str, Any]:
    """Resume while no agent runs: with `queued`, write the signal first and start the
    agent after; else start the agent and then resume. The instance's `show --json`
    once it has `status`."""
    command = ("resume", "--correlation-id", correlation_id, *args, "--json")
    if queued:
        written = procctl.ok(*command).json()["signal"]
        assert written["status"] == "queued", written
        procctl.ok("agent", "start")
        wait_for(lambda: instance_state(procctl, instance_id)[0] not in ("paused", "running"),
                 timeout=30, message="the queued resume to be applied and the instance to end")
        shown = show_json(procctl, instance_id)
        assert shown["status"] == status, shown
        return shown
    procctl.ok("agent", "start")
    result = procctl(*command)
    assert result.code == (0 if status == "completed" else 1), str(result)
    instance = applied(result)
    assert instance["instance_id"] == instance_id
    assert instance["status"] == status, instance
    return show_json(procctl, instance_id)


def pause_then_resume(procctl: Procctl, path: Path, correlation_id: str, *resume_args: str,
                      kill: bool = False, queued: bool = False,
                      status: str = "completed") -> dict[str, Any]:
    """Run until the pause at the checkpoint "ask", halt the agent (SIGKILL with
    `kill`), resume with `resume_args` (--data, --set): the instance's final
    `show --json`. Its history shows every log step that ran, before and after."""
    paused = run_paused(procctl, path)
    assert paused["correlation_id"] == correlation_id, paused
    assert paused["checkpoint"]["step_id"] == "ask", paused
    halt_agent(procctl, kill)
    return resume(procctl, paused["instance_id"], correlation_id, *resume_args, queued=queued,
                  status=status)


def logged(history: list[dict[str, Any]]) -> list[str]:
    return [str(e["data"]["message"]) for e in history if e["kind"] == "log"]


# -- foreach ----------------------------------------------------------------------------

FOREACH_BODY = """
[process]
name = "block-foreach"

[[steps]]
id = "each"
kind = "foreach"
items = "['a', 'b', 'c']"
as = "letter"
index_as = "i"

[[steps.body]]
id = "before"
task = "log"
with = { message = "before {{ letter }}" }
[[steps.body]]
id = "second-only"
kind = "if"
condition = "i == 1"
[[steps.body.then]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-foreach"
[[steps.body]]
id = "after"
task = "log"
with = { message = "after {{ i }}:{{ letter }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
"""


def test_checkpoint_in_a_foreach_body_after_a_sigkill(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(FOREACH_BODY)
    instance = pause_then_resume(procctl, path, "block-foreach", kill=True)
    # The resumed iteration kept its item and index; the first iteration's value is kept.
    assert instance["result"] == ["after 0:a", "after 1:b", "after 2:c"]
    assert logged(instance["history"]) == [
        "before a", "after 0:a", "before b", "after 1:b", "before c", "after 2:c"]


# -- scope: catch -----------------------------------------------------------------------

SCOPE_CATCH = """
[process]
name = "block-scope-catch"

[[steps]]
id = "guard"
kind = "scope"
error_as = "problem"

[[steps.do]]
id = "boom"
kind = "throw"
message = "the first failure"

[[steps.catch]]
id = "catch-before"
task = "log"
with = { message = "catch before: {{ problem.message }}" }
[[steps.catch]]
id = "ask"
kind = "checkpoint"
correlation_id = "block-scope-catch"
[[steps.catch]]
id = "catch-after"
kind = "return"

[steps.catch.value]
message = "{{ problem.message }}"
step = "{{ problem.step }}"
kind = "{{ problem.kind }}"
answer = "{{ results['ask'].payload.answer }}"

[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "finally" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['guard'] }}"
"""


def test_checkpoint_in_a_scope_catch_keeps_the_error_after_a_sigkill(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SCOPE_CATCH)
    instance = pause_then_resume(procctl, path, "block-scope-catch", "-d", "answer=ok",
                                 kill=True, queued=True)
    assert instance["result"] == {"message": "the first failure", "step": "boom",
                                  "kind": "thrown", "answer": "ok"}
    assert logged(instance["history"]) == [
        "catch before: the first failure", "finally"]


