"""`procctl resume` cannot mislead: a mistyped correlation ID, a bad --signal-id, an
oversized payload and a rejected file each end with a clear line and their own exit
code, with the agent running or stopped; `--pending` holds a signal on purpose, and a
held signal's `set` is applied when it is delivered.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from helpers import Procctl, run_paused, show_json, unique_key, wait_for, wait_settled

WriteDefinition = Callable[..., Path]

# Sets a variable, waits for a gate file (so a signal can come before the pause, whatever
# the machine's load), pauses, returns both.
HELD = """
[process]
name = "held"

[process.params.key]
type = "str"

[process.params.gate]
type = "str"
default = "/"

[[steps]]
id = "setup"
kind = "set"
values = { amount = 1 }

[[steps]]
id = "gate"
task = "exec"
timeout = 60
with = { argv = ["sh", "-c", "while [ ! -e \\"$1\\" ]; do sleep 0.02; done", "gate",
                 "{{ gate }}"] }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "approval-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = { amount = "{{ amount }}", payload = "{{ results['wait'].payload }}" }
"""

# Pauses, then needs a marker file: fails after the resume until the marker exists.
NEEDS_MARKER = """
[process]
name = "needs-marker"

[process.params.key]
type = "str"

[process.params.marker]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "retry-{{ key }}"

[[steps]]
id = "check"
task = "exec"
with = { argv = ["test", "-e", "{{ marker }}"] }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['wait'].payload }}"
"""


def written_signals(home: Path) -> list[Path]:
    return sorted((home / "signals").glob("*.json"))


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_an_oversized_payload_is_refused_up_front(procctl: Procctl, tmp_path: Path) -> None:
    procctl.ok("config", "set", "max_signal_bytes", "2000")
    payload = tmp_path / "big.json"
    payload.write_text(json.dumps({"blob": "x" * 5000}))
    started = time.monotonic()
    result = procctl("resume", "-c", "anything", "--payload-file", payload)
    assert result.code == 2, str(result)
    line = one_error_line(result.err)
    assert "over max_signal_bytes (2000)" in line and "bytes" in line, line
    assert "max_signal_bytes" in result.err  # the hint says how to raise it
    assert time.monotonic() - started < 10
    assert written_signals(procctl.home) == []


def test_a_rejected_signal_file_is_reported_at_once_with_exit_7(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    """The agent took its limit when it started; the CLI reads a larger one since, so
    the file goes out and the agent rejects it. resume sees that within a second."""
    procctl.ok("config", "set", "max_signal_bytes", "1000")
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(HELD), "-p", f"key={key}")["instance_id"]
    procctl.ok("config", "set", "max_signal_bytes", "100000")
    started = time.monotonic()
    result = procctl("resume", "-c", f"approval-{key}", "-d", "note=" + "y" * 3000,
                     "--timeout", "30")
    took = time.monotonic() - started
    assert result.code == 7, str(result)
    assert "too large" in one_error_line(result.err) and "1000" in result.err
    assert took < 10, took
    shown = procctl("resume", "-c", f"approval-{key}", "-d", "note=" + "y" * 3000,
                    "--timeout", "30", "--json")
    assert shown.code == 7, str(shown)
    assert shown.json()["signal"]["status"] == "rejected"
    assert "too large" in shown.json()["signal"]["reason"]
    assert show_json(procctl, instance_id)["status"] == "paused"


def test_signal_ids_outside_the_alphabet_are_usage_errors(procctl: Procctl) -> None:
    for bad in ("../escape", "a/b", "x" * 129, ".hidden"):
        result = procctl("resume", "-c", "anything", "--signal-id", bad)
        assert result.code == 2, str(result)
        line = one_error_line(result.err)
        assert "--signal-id" in line and "letters, digits" in line, line
    assert not (procctl.home / "signals").exists() or written_signals(procctl.home) == []


def test_a_mistyped_correlation_id_is_refused_with_did_you_mean(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    key = unique_key()
    paused = run_paused(procctl, write_definition(HELD), "-p", f"key=C-{key}")["instance_id"]
    typo = f"approval-C{key}"

    result = procctl("resume", "-c", typo, "-d", "approved=true")
    assert result.code == 7, str(result)
    line = one_error_line(result.err)
    assert f"did you mean 'approval-C-{key}'" in line, line
    assert "--pending" in result.err
    as_json = procctl("resume", "-c", typo, "--json")
    assert as_json.code == 7, str(as_json)
    signal = as_json.json()["signal"]
    assert signal["status"] == "refused" and signal["did_you_mean"] == [f"approval-C-{key}"]
    assert written_signals(procctl.home) == []

    # The same with no agent running: the store is read directly.
    procctl.ok("agent", "stop")
    stopped = procctl("resume", "-c", typo, "-d", "approved=true")
    assert stopped.code == 7, str(stopped)
    assert f"did you mean 'approval-C-{key}'" in one_error_line(stopped.err)
    assert written_signals(procctl.home) == []
    assert not (procctl.home / "agent.sock").exists()  # no agent was started for it

    # --pending sends it anyway, to be held; the paused instance is not touched.
    procctl.ok("agent", "start")
    held = procctl("resume", "-c", typo, "-d", "approved=true", "--pending", "--json")
    assert held.code == 0, str(held)
    assert held.json()["signal"]["status"] == "pending"
    assert show_json(procctl, paused)["status"] == "paused"


def test_resume_refuses_what_is_not_paused_with_the_store_s_reason(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    nothing = procctl("resume", "-c", "approval-nobody")  # no store at all yet
    assert nothing.code == 7, str(nothing)
    assert "no instance is paused at all" in one_error_line(nothing.err)
    assert not (procctl.home / "procctl.db").exists()

    key = unique_key()
    instance_id = run_paused(procctl, write_definition(HELD), "-p", f"key={key}")["instance_id"]
    done = procctl.ok("resume", "-c", f"approval-{key}", "--json").json()
    assert done["instance"]["status"] == "completed"
    procctl.ok("agent", "stop")
    again = procctl("resume", "-c", f"approval-{key}")
    assert again.code == 7, str(again)
    assert f"instance {instance_id} is completed" in one_error_line(again.err)
    assert written_signals(procctl.home) == []


def test_resume_retries_a_failed_instance_that_kept_its_checkpoint(
        procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    key = unique_key()
    marker = tmp_path / "fixed"
    path = write_definition(NEEDS_MARKER)
    instance_id = run_paused(procctl, path, "-p", f"key={key}",
                             "-p", f"marker={marker}")["instance_id"]
    failed = procctl("resume", "-c", f"retry-{key}", "-d", "try=1")
    assert failed.code == 1, str(failed)
    assert show_json(procctl, instance_id)["status"] == "failed"
    marker.touch()
    procctl.ok("agent", "stop")  # the check reads the store with the agent down, too
    queued = procctl.ok("resume", "-c", f"retry-{key}", "-d", "try=2", "--json").json()
    assert queued["signal"]["status"] == "queued"
    procctl.ok("agent", "start")
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == {"try": 2}


def _applied(shown: dict[str, object]) -> list[dict[str, object]]:
    history = shown["history"]
    assert isinstance(history, list)
    return [e["data"] for e in history if e["kind"] == "signal_applied"]


def test_a_held_signal_s_set_is_applied_when_it_is_delivered(
        procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    """Through `procctl resume --pending --set` and through a signal file with `set`:
    the signal comes before the pause, is held, and its `set` edits the variables."""
    path = write_definition(HELD)
    by_cli, by_file = unique_key(), unique_key()
    gate = tmp_path / "gate"
    first = procctl.ok("run", path, "--json", "-p", f"key={by_cli}", "-p", f"gate={gate}")
    second = procctl.ok("run", path, "--json", "-p", f"key={by_file}", "-p", f"gate={gate}")
    held = procctl("resume", "-c", f"approval-{by_cli}", "--pending", "--set", "amount=5",
                   "-d", "by=cli")
    assert held.code == 0, str(held)
    assert "Held pending" in held.out, str(held)
    signals = procctl.home / "signals"
    tmp = signals / "early.tmp"
    tmp.write_text(json.dumps({"correlation_id": f"approval-{by_file}", "payload": {"by": "file"},
                               "set": {"amount": 7}}))
    tmp.rename(signals / "early.json")
    wait_for(lambda: any(r["source"] == "file:early.json" and r["status"] == "pending"
                         for r in procctl.ok("signals", "--json").json()["signals"]),
             timeout=10)
    gate.touch()  # both instances go on to their checkpoint and pause there

    from_cli = wait_settled(procctl, first.json()["instance_id"])
    assert from_cli["result"] == {"amount": 5, "payload": {"by": "cli"}}
    from_file = wait_settled(procctl, second.json()["instance_id"])
    assert from_file["result"] == {"amount": 7, "payload": {"by": "file"}}
    for shown in (from_cli, from_file):
        [applied] = _applied(shown)
        assert applied["held_pending"] is True and applied["set"] == ["amount"], applied


def test_a_repeated_signal_id_is_reported_as_a_duplicate_with_exit_7(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    """The same --signal-id sent again (held with --pending, so it reaches the agent)
    is the repeat the store records, not the first signal's success."""
    key = unique_key()
    run_paused(procctl, write_definition(HELD), "-p", f"key={key}")
    first = procctl.ok("resume", "-c", f"approval-{key}", "--signal-id", f"sig-{key}",
                       "--json").json()
    assert first["signal"]["status"] == "applied"
    again = procctl("resume", "-c", f"approval-{key}", "--signal-id", f"sig-{key}",
                    "--pending")
    assert again.code == 7, str(again)
    assert "not resumed: duplicate" in one_error_line(again.err)
