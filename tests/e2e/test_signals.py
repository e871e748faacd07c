"""Signals end to end: signal files (write NAME.tmp, rename to NAME.json), early and
unmatched signals, duplicates, concurrent resumes, bad files, a stopped agent, and the
`signal` step.

Tests that need an agent setting or a stopped agent get a home of their own; the
others share the session's agent and use their own correlation IDs.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import (
    PROCCTL,
    Procctl,
    instance_state,
    run_paused,
    show_json,
    unique_key,
    wait_for,
    wait_settled,
)

WriteDefinition = Callable[..., Path]

# Pauses (after an optional nap) and returns how it was resumed.
SIGNALLED = """
[process]
name = "signalled"

[process.params.key]
type = "str"

[process.params.nap]
type = "float"
default = 0.0

[process.params.ledger]
type = "str"
default = "ledger.txt"

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = "{{ nap }}" }

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "sig-{{ key }}"

[[steps]]
id = "after"
task = "file.write"
with = { path = "{{ ledger }}", append = true, content = "resumed\\n" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
by = "{{ results['wait'].resumed_by }}"
payload = "{{ results['wait'].payload }}"
iteration = "{{ results['wait'].iteration }}"
"""



def drop_signal(directory: Path, name: str, document: Any) -> Path:
    """The signal file protocol: write NAME.tmp, then rename it to NAME.json."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{name}.tmp"
    tmp.write_text(json.dumps(document), encoding="utf-8")
    final = directory / f"{name}.json"
    os.rename(tmp, final)
    return final






def _rejected_reason(directory: Path, name: str, timeout: float = 20) -> str:
    """Wait for NAME to land in rejected/ beside NAME.error.json; the reason given."""
    error = directory / "rejected" / f"{name}.error.json"
    wait_for(error.exists, timeout=timeout, message=f"{name} to be rejected")
    assert (directory / "rejected" / name).is_symlink() or \
        (directory / "rejected" / name).exists()
    assert not (directory / name).exists() and not (directory / name).is_symlink()
    data = json.loads(error.read_text())
    assert data["file"] == name
    reason: str = data["reason"]
    return reason


def test_a_signal_file_resumes_the_instance_and_is_filed_as_processed(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(SIGNALLED)
    key = unique_key()
    summary = run_paused(shared_procctl, path, "-p", f"key={key}")
    signals = shared_procctl.home / "signals"
    drop_signal(signals, f"answer-{key}", {"correlation_id": f"sig-{key}",
                                           "payload": {"approved": True, "note": "ok"}})
    shown = wait_settled(shared_procctl, summary["instance_id"])
    assert shown["result"] == {"by": "signal", "payload": {"approved": True, "note": "ok"},
                               "iteration": 1}
    assert (signals / "processed" / f"answer-{key}.json").is_file()
    assert not (signals / f"answer-{key}.json").exists()
    assert not (signals / "rejected" / f"answer-{key}.json").exists()
    assert (tmp_path / "ledger.txt").read_text() == "resumed\n"


def test_an_early_signal_is_held_and_delivered_at_the_pause(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SIGNALLED)
    key = unique_key()
    started = shared_procctl.ok("run", path, "--json", "-p", f"key={key}", "-p", "nap=2")
    instance_id = started.json()["instance_id"]
    # The reply comes before the process reaches its checkpoint.
    signals = shared_procctl.home / "signals"
    drop_signal(signals, f"early-{key}", {"correlation_id": f"sig-{key}",
                                          "payload": {"fast": True},
                                          "signal_id": f"early-{key}"})
    shown = wait_settled(shared_procctl, instance_id)
    assert shown["result"] == {"by": "signal", "payload": {"fast": True}, "iteration": 1}
    rows = shared_procctl.ok("signals", "--all", "--json").json()["signals"]
    mine = [row for row in rows if row["signal_id"] == f"early-{key}"]
    assert len(mine) == 1, rows
    assert mine[0]["status"] == "applied"
    assert mine[0]["instance_id"] == instance_id
    assert "held pending" in mine[0]["reason"]  # it waited for the pause
    assert (signals / "processed" / f"early-{key}.json").is_file()


def test_a_pending_signal_past_the_buffer_becomes_unmatched(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    procctl.ok("config", "set", "signal_buffer", "1s")
    procctl.ok("agent", "start")
    key = unique_key()
    drop_signal(procctl.home / "signals", "lonely",
                {"correlation_id": f"sig-{key}", "payload": {"late": True},
                 "signal_id": f"lonely-{key}"})

    def unmatched() -> dict[str, Any] | None:
        rows = procctl.ok("signals", "--json").json()["signals"]
        found = [row for row in rows if row["signal_id"] == f"lonely-{key}"]
        return found[0] if found and found[0]["status"] == "unmatched" else None

    row = wait_for(unmatched, timeout=15, interval=0.2, message="the signal to be unmatched")
    assert row["correlation_id"] == f"sig-{key}"
    assert "within the buffer time" in row["reason"]
    assert row["payload"] == {"late": True}
    # An instance pausing at that correlation ID later is not resumed by it.
    table, run = procctl.many(("signals",), ("run", write_definition(SIGNALLED), "--wait",
                                             "--json", "-p", f"key={key}"))
    line = next(t for t in table.out.splitlines() if f"sig-{key}" in t)
    assert "unmatched" in line and "buffer time" in line, table.out
    summary = run.json()
    assert summary["status"] == "paused", str(run)
    rows = procctl.ok("list-paused", "--json").json()
    assert [r["instance_id"] for r in rows] == [summary["instance_id"]]


# Pauses twice under the same correlation ID, with a ledger line between the pauses.
TWICE = """
[process]
name = "twice"

[process.params.key]
type = "str"

[[steps]]
id = "first"
kind = "checkpoint"
correlation_id = "twice-{{ key }}"

[[steps]]
id = "mark"
task = "file.write"
with = { path = "ledger.txt", append = true, content = "resumed at first\\n" }

[[steps]]
id = "second"
kind = "checkpoint"
correlation_id = "twice-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = "{{ results['second'].payload }}"
"""


def test_a_repeated_signal_id_is_ignored_and_reported_as_a_duplicate(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(TWICE)
    key = unique_key()
    instance_id = run_paused(shared_procctl, path, "-p", f"key={key}")["instance_id"]
    signals = shared_procctl.home / "signals"
    document = {"correlation_id": f"twice-{key}", "signal_id": f"once-{key}",
                "payload": {"n": 1}}
    drop_signal(signals, f"first-{key}", document)

    wait_for(lambda: instance_state(shared_procctl, instance_id) == ("paused", "second", 0),
             message="the instance to pause at its second checkpoint")
    assert (signals / "processed" / f"first-{key}.json").is_file()

    # The same signal again (a sender retrying): it must not resume the second pause.
    drop_signal(signals, f"again-{key}", {**document, "payload": {"n": 2}})
    reason = _rejected_reason(signals, f"again-{key}.json")
    assert "duplicate" in reason and f"once-{key}" in reason
    shown = show_json(shared_procctl, instance_id)
    assert shown["status"] == "paused"
    assert shown["checkpoint"]["step_id"] == "second"
    assert shown["checkpoint"]["iteration"] == 0
    assert (tmp_path / "ledger.txt").read_text() == "resumed at first\n"
    rows = shared_procctl.ok("signals", "--json").json()["signals"]
    duplicates = [r for r in rows if r["signal_id"] == f"once-{key}"]
    assert [r["status"] for r in duplicates] == ["duplicate"]
    assert "duplicate" in duplicates[0]["reason"]

    done = shared_procctl.ok("resume", "-c", f"twice-{key}", "-d", "n=3", "--json").json()
    assert done["instance"]["status"] == "completed"
    assert done["instance"]["result"] == {"n": 3}
    assert (tmp_path / "ledger.txt").read_text() == "resumed at first\n"


def test_ten_concurrent_resumes_resume_once(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition(SIGNALLED)
    key = unique_key()
    instance_id = run_paused(shared_procctl, path, "-p", f"key={key}")["instance_id"]
    clients = [subprocess.Popen(
        [PROCCTL, "resume", "--correlation-id", f"sig-{key}", "-d", f"client={n}", "--json"],
        env=shared_procctl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL) for n in range(10)]
    outcomes: list[tuple[int, str, str]] = []
    for client in clients:
        out, err = client.communicate(timeout=60)
        outcomes.append((client.returncode, out, err))

    winners = [o for o in outcomes if o[0] == 0]
    losers = [o for o in outcomes if o[0] != 0]
    assert len(winners) == 1, outcomes
    won = json.loads(winners[0][1])
    assert won["signal"]["status"] == "applied"
    assert won["instance"]["instance_id"] == instance_id
    assert won["instance"]["status"] == "completed"
    client = won["instance"]["result"]["payload"]["client"]
    assert won["instance"]["result"] == {"by": "manual", "payload": {"client": client},
                                         "iteration": 1}
    for code, out, err in losers:
        assert code == 7, (code, out, err)
        signal = json.loads(out)["signal"]
        # rejected by the agent, or refused by resume itself when the store already
        # showed the instance running or completed
        assert signal["status"] in ("rejected", "refused")
        assert signal["reason"] and instance_id in signal["reason"]
    # The step after the checkpoint ran once.
    assert (tmp_path / "ledger.txt").read_text() == "resumed\n"
    assert show_json(shared_procctl, instance_id)["status"] == "completed"


def test_malformed_signal_files_are_rejected_with_a_reason(
        procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    procctl.ok("config", "set", "signal_scan_interval", "1s")
    key = unique_key()
    correlation = f"sig-{key}"
    instance_id = run_paused(procctl, write_definition(SIGNALLED),
                          "-p", f"key={key}")["instance_id"]
    signals = procctl.home / "signals"

    def valid(source: str) -> str:
        return json.dumps({"correlation_id": correlation, "payload": {"from": source}})

    # Temporary names must be ignored and left alone, even with a valid signal inside.
    (signals / ".hidden.json").write_text(valid("hidden"))
    (signals / "later.tmp").write_text(valid("tmp"))

    def rename_in(name: str, content: str,
                  prepare: Callable[[Path], object] | None = None) -> None:
        tmp = signals / f"{name}.tmp"
        tmp.write_text(content)
        if prepare is not None:
            prepare(tmp)
        os.rename(tmp, signals / name)

    expected = {
        "not-json.json": "not JSON",
        "no-correlation.json": "no correlation_id",
        "big.json": "too large",
        "link.json": "symbolic link",
        "x.txt": "odd file name",
        "d.json": "directory",
        "hard.json": "hard links",
        "probe.json": "directory",
    }
    rename_in("not-json.json", "{this is not json")
    rename_in("no-correlation.json", json.dumps({"payload": {"from": "nowhere"}}))
    big = json.dumps({"correlation_id": correlation, "payload": "x" * (2 * 1024 * 1024)})
    rename_in("big.json", big)
    target = tmp_path / "elsewhere.json"
    target.write_text(valid("link"))
    (tmp_path / "link.json").symlink_to(target)
    os.rename(tmp_path / "link.json", signals / "link.json")
    rename_in("x.txt", valid("txt"))
    (tmp_path / "d.json").mkdir()
    os.rename(tmp_path / "d.json", signals / "d.json")
    rename_in("hard.json", valid("hard"),
              lambda tmp: os.link(tmp, tmp_path / "second-link.json"))
    if os.geteuid() == 0:  # only root can give a file to another user
        rename_in("foreign.json", valid("foreign"), lambda tmp: os.chown(tmp, 4242, 4242))
        expected["foreign.json"] = "owned by uid 4242"
    # A directory made in place sends no rename event: only the periodic scan finds it,
    # and that scan also passes over the temporary names above.
    (signals / "probe.json").mkdir()

    for name, words in expected.items():
        reason = _rejected_reason(signals, name)
        assert words in reason, (name, reason)
    assert (signals / "rejected" / "link.json").is_symlink()
    assert target.read_text() == valid("link")  # the link's target was not touched
    assert (signals / "rejected" / "d.json").is_dir()

    listed = procctl.ok("signals", "--json").json()
    rejected = {row["source"]: row for row in listed["signals"] if row["status"] == "rejected"}
    for name, words in expected.items():
        assert words in rejected[f"file:{name}"]["reason"], (name, rejected)
    assert listed["unread_files"] == []

    # Nothing resumed the instance, the ignored files are still there, and the agent
    # still takes a good signal.
    assert show_json(procctl, instance_id)["status"] == "paused"
    assert (signals / ".hidden.json").read_text() == valid("hidden")
    assert (signals / "later.tmp").read_text() == valid("tmp")
    drop_signal(signals, "good", {"correlation_id": correlation, "payload": {"from": "good"}})
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == {"by": "signal", "payload": {"from": "good"}, "iteration": 1}
    assert (signals / "processed" / "good.json").is_file()
    assert (signals / ".hidden.json").exists() and (signals / "later.tmp").exists()


def test_signals_sent_while_the_agent_is_down_are_applied_when_it_starts(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(SIGNALLED)
    procctl.ok("agent", "start")
    by_file, by_cli = procctl.many(("run", path, "--wait", "--json", "-p", "key=file"),
                                   ("run", path, "--wait", "--json", "-p", "key=cli"))
    assert by_file.json()["status"] == "paused", str(by_file)
    assert by_cli.json()["status"] == "paused", str(by_cli)
    procctl.ok("agent", "stop")

    signals = procctl.home / "signals"
    drop_signal(signals, "offline", {"correlation_id": "sig-file", "payload": {"via": "file"}})
    resumed = procctl("resume", "--correlation-id", "sig-cli", "-d", "via=cli")
    assert resumed.code == 0, str(resumed)
    assert "written to" in resumed.out
    assert "No agent is running" in resumed.err and "procctl agent start" in resumed.err
    written = [p for p in signals.glob("resume-*.json")]
    assert len(written) == 1
    assert json.loads(written[0].read_text())["correlation_id"] == "sig-cli"
    # Nothing happened yet: both still paused.
    rows = procctl.ok("list-paused", "--json").json()
    assert sorted(r["correlation_id"] for r in rows) == ["sig-cli", "sig-file"]

    procctl.ok("agent", "start")
    from_file = wait_settled(procctl, by_file.json()["instance_id"])
    from_cli = wait_settled(procctl, by_cli.json()["instance_id"])
    assert from_file["result"] == {"by": "signal", "payload": {"via": "file"}, "iteration": 1}
    assert from_cli["result"] == {"by": "manual", "payload": {"via": "cli"}, "iteration": 1}
    assert (signals / "processed" / "offline.json").is_file()
    assert (signals / "processed" / written[0].name).is_file()


SENDER = """
[process]
name = "sender"

[process.params.target]
type = "str"

[[steps]]
id = "poke"
kind = "signal"
correlation_id = "{{ target }}"
payload = { approved = true, from = "{{ process.instance_id }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['poke'] }}"
"""


def test_the_signal_step_resumes_another_instance(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    target = write_definition(SIGNALLED, "target.toml")
    sender = write_definition(SENDER, "sender.toml")
    key = unique_key()
    waiting = run_paused(shared_procctl, target, "-p", f"key={key}")["instance_id"]

    sent = shared_procctl.ok("run", sender, "--wait", "--json", "-p", f"target=sig-{key}")
    summary = sent.json()
    assert summary["status"] == "completed", summary
    assert summary["result"]["outcome"] == "applied"
    assert summary["result"]["instance_id"] == waiting
    shown = wait_settled(shared_procctl, waiting)
    assert shown["result"] == {
        "by": "signal", "iteration": 1,
        "payload": {"approved": True, "from": summary["instance_id"]}}

    # The target has completed: a second signal is refused, and fails the step.
    again = shared_procctl("run", sender, "--wait", "--json", "-p", f"target=sig-{key}")
    assert again.code == 1, str(again)
    error = again.json()["error"]
    assert error["step_id"] == "poke" and error["kind"] == "signal_rejected"
    assert "completed" in error["message"]
