"""Hostile signal files against a real agent: none of them stops it.

Each bad file ends in rejected/ with a reason that names what is wrong (nesting depth,
number size, a lone surrogate, a bad signal_id, ...), a name too long for its error
file is filed under a shortened one, the valid signal behind them is applied, and an
agent started with the bad files already waiting starts and applies the valid ones.
A file without a signal_id is a repeat only when it is the same file (same name,
content and time), not when the file system hands a new file the same inode.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from helpers import Procctl, run_paused, show_json, unique_key, wait_for, wait_settled

WriteDefinition = Callable[..., Path]

# Pauses until a signal comes; returns its payload.
WAITS = """
[process]
name = "waits"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "hostile-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = "{{ results['wait'].payload }}"
"""

# Pauses twice under the same correlation ID; returns both payloads.
TWICE = """
[process]
name = "twice"

[process.params.key]
type = "str"

[[steps]]
id = "first"
kind = "checkpoint"
correlation_id = "again-{{ key }}"

[[steps]]
id = "second"
kind = "checkpoint"
correlation_id = "again-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = ["{{ results['first'].payload }}", "{{ results['second'].payload }}"]
"""

LONG_NAME = "n" * 245 + ".json"  # 250 bytes: its .error.json would be 261, over NAME_MAX


def hostile_files(correlation_id: str) -> dict[str, tuple[bytes, str]]:
    """Bad file name -> (its bytes, words its rejection reason must contain)."""
    def signal(payload_text: str, **extra: str) -> bytes:
        fields = "".join(f', "{k}": {v}' for k, v in extra.items())
        return (f'{{"correlation_id": "{correlation_id}", "payload": {payload_text}'
                f'{fields}}}').encode()

    return {
        "deep-600.json": (signal("[" * 600 + "]" * 600), "nested deeper than 64 levels"),
        "deep-100k.json": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64 levels"),
        "big-int.json": (signal("9" * 5000), "a number of 5000 characters"),
        "big-float.json": (signal("1e999"), "out of range"),
        "nan.json": (signal("NaN"), "NaN is not a JSON value"),
        "surrogate.json": (signal('"\\ud800"'), "lone surrogate"),
        "bad-id.json": (signal("{}", signal_id='"../escape"'), "signal_id '../escape'"),
        "slash-id.json": (signal("{}", signal_id='"a/b"'), "signal_id 'a/b'"),
        LONG_NAME: (b"{not json", "not JSON"),
    }


def drop(directory: Path, name: str, data: bytes) -> Path:
    """The signal file protocol: write a temporary file, rename it to NAME."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".drop-{unique_key()}.tmp"
    tmp.write_bytes(data)
    target = directory / name
    os.rename(tmp, target)
    return target


def rejections(directory: Path) -> dict[str, dict[str, str]]:
    """Original file name -> its error document, for every file in rejected/."""
    found = {}
    for error in (directory / "rejected").glob("*.error.json"):
        document = json.loads(error.read_text(encoding="utf-8"))
        found[document["file"]] = document
    return found


def check_rejected(directory: Path, expected: dict[str, tuple[bytes, str]]) -> None:
    wait_for(lambda: set(expected) <= set(rejections(directory)), timeout=20,
             message="every hostile file to be rejected")
    found = rejections(directory)
    for name, (data, words) in expected.items():
        document = found[name]
        assert words in document["reason"], (name, document["reason"])
        moved = Path(document["moved_to"])
        assert moved.parent == directory / "rejected", document
        assert moved.read_bytes() == data, name  # the file itself, untouched
        assert len(os.fsencode(moved.name + ".error.json")) <= 255
        assert not (directory / name).exists()
    long_filed = Path(found[LONG_NAME]["moved_to"]).name
    assert long_filed != LONG_NAME and long_filed.endswith(".json")  # shortened to fit


def agent_log_errors(home: Path) -> list[dict[str, object]]:
    lines = (home / "agent.log").read_text(encoding="utf-8").splitlines()
    entries = [json.loads(line) for line in lines if line.strip()]
    return [e for e in entries if e.get("level") in ("error", "critical") or "traceback" in e]


def test_hostile_files_are_rejected_and_the_signal_behind_them_applies(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(WAITS), "-p", f"key={key}")["instance_id"]
    pid = procctl.agent_pid()
    signals = procctl.home / "signals"
    expected = hostile_files(f"hostile-{key}")
    for name, (data, _) in expected.items():
        drop(signals, name, data)
    drop(signals, "good.json", json.dumps({"correlation_id": f"hostile-{key}",
                                           "payload": {"ok": True}}).encode())

    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == {"ok": True}
    assert (signals / "processed" / "good.json").is_file()
    check_rejected(signals, expected)
    listed = procctl.ok("signals", "--json").json()
    assert listed["unread_files"] == []
    reasons = {row["source"]: row["reason"] for row in listed["signals"]}
    assert "nested deeper than 64 levels" in reasons["file:deep-600.json"]
    assert "not JSON" in reasons[f"file:{LONG_NAME}"]
    # The same agent is still up and answering.
    status = procctl.ok("agent", "status", "--json").json()
    assert status["pid"] == pid
    assert agent_log_errors(procctl.home) == []


def test_an_agent_started_with_hostile_files_waiting_starts_and_applies_the_valid_ones(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(WAITS), "-p", f"key={key}")["instance_id"]
    procctl.ok("agent", "stop")
    signals = procctl.home / "signals"
    expected = hostile_files(f"hostile-{key}")
    for name, (data, _) in expected.items():
        drop(signals, name, data)
    drop(signals, "valid.json", json.dumps({"correlation_id": f"hostile-{key}",
                                            "payload": {"after": "restart"}}).encode())

    procctl.ok("agent", "start")
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == {"after": "restart"}
    check_rejected(signals, expected)
    assert (signals / "processed" / "valid.json").is_file()
    # And again: a second start with nothing left to trip over.
    procctl.ok("agent", "stop")
    procctl.ok("agent", "start")
    assert agent_log_errors(procctl.home) == []


def test_a_new_file_with_the_same_name_size_and_time_is_not_a_repeat(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    """The second file has the name, size and modification time of the first (and, most
    likely, its freed inode); its content differs, so it is a new signal."""
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(TWICE), "-p", f"key={key}")["instance_id"]
    signals = procctl.home / "signals"
    stamp = 1_700_000_000_123_456_789

    def send(n: int) -> None:
        tmp = signals / "answer.tmp"
        tmp.write_text(json.dumps({"correlation_id": f"again-{key}", "payload": {"n": n}}))
        os.utime(tmp, ns=(stamp, stamp))
        os.rename(tmp, signals / "answer.json")

    send(1)
    wait_for(lambda: show_json(procctl, instance_id)["checkpoint"]["step_id"] == "second",
             message="the instance to pause at its second checkpoint")
    first = signals / "processed" / "answer.json"
    assert first.is_file()
    size = first.stat().st_size
    first.unlink()  # frees the inode: the next file is likely to get it
    send(2)
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == [{"n": 1}, {"n": 2}]
    second = signals / "processed" / "answer.json"
    assert second.stat().st_size == size and second.stat().st_mtime_ns == stamp


def test_the_same_content_written_again_is_a_new_signal(
        procctl: Procctl, write_definition: WriteDefinition) -> None:
    """Without a signal_id, sending the same content again (a new file) is a new
    signal: the second pause under the same correlation ID takes it."""
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(TWICE), "-p", f"key={key}")["instance_id"]
    signals = procctl.home / "signals"
    document = json.dumps({"correlation_id": f"again-{key}", "payload": {"same": True}})
    drop(signals, "same.json", document.encode())
    wait_for(lambda: show_json(procctl, instance_id)["checkpoint"]["step_id"] == "second",
             message="the instance to pause at its second checkpoint")
    drop(signals, "same.json", document.encode())
    shown = wait_settled(procctl, instance_id)
    assert shown["result"] == [{"same": True}, {"same": True}]


SENDS_BAD_ID = """
[process]
name = "sends-bad-id"

[process.params.target]
type = "str"

[[steps]]
id = "poke"
kind = "signal"
correlation_id = "{{ target }}"
signal_id = "../{{ target }}"
"""


def test_a_signal_step_with_a_signal_id_outside_the_alphabet_fails(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    key = unique_key()
    waiting = run_paused(shared_procctl, write_definition(WAITS, "waits.toml"),
                         "-p", f"key={key}")["instance_id"]
    sent = shared_procctl("run", write_definition(SENDS_BAD_ID, "sender.toml"), "--wait",
                          "--json", "-p", f"target=hostile-{key}")
    assert sent.code == 1, str(sent)
    error = sent.json()["error"]
    assert error["step_id"] == "poke" and error["kind"] == "signal_rejected"
    assert f"signal_id '../hostile-{key}' is not valid" in error["message"]
    assert show_json(shared_procctl, waiting)["status"] == "paused"
