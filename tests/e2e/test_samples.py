"""Every sample in samples/ runs to its documented end through a real agent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLES, Procctl

SAMPLE_FILES = sorted(SAMPLES.glob("*.toml"))

ORDERS_REPORT = "1. apple x3 = 120\n2. pear x2 = 110\n3. plum x10 = 150\n"

#: The result of each sample run with its defaults, where it is deterministic. A sample
#: missing here must still complete with a non-null result.
EXPECTED: dict[str, Any] = {
    "hello.toml": {"greeting": "Hello, world!", "letters": 5},
    "orders.toml": {"orders": 3, "total_cents": 380, "size": "large",
                    "report": ORDERS_REPORT},
}


def run_sample(procctl: Procctl, path: Path, *args: str) -> dict[str, Any]:
    result = procctl("run", path, "--wait", "--json", *args)
    assert result.code == 0, str(result)
    summary: dict[str, Any] = result.json()
    assert summary["status"] == "completed", summary
    return summary


def drive_approval(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    """Pauses for an answer; the documented end after `procctl resume ... approved=true`."""
    paused = procctl("run", path, "--wait", "--json", "-p", "order=T-1").json()
    assert paused["status"] == "paused", paused
    assert paused["correlation_id"] == "approval-T-1"
    resumed = procctl.ok("resume", "--correlation-id", "approval-T-1", "--data",
                         "approved=true", "--data", "by=ada", "--json").json()
    return dict(resumed["instance"])


def drive_poll(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    """Polls for a file; it completes at the first check when the file is there."""
    flag = tmp_path / "ready.flag"
    flag.touch()
    return run_sample(procctl, path, "-p", f"path={flag}")


def drive_reply(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    outbox = tmp_path / "outbox.jsonl"
    summary = run_sample(procctl, path, "-p", f"outbox={outbox}")
    assert outbox.read_text() == '{"messageId": "msg-1", "possibleRepeat": false}\n'
    return summary


def drive_plain(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    return run_sample(procctl, path)


#: How each sample reaches its documented end. A new sample must be added here.
DRIVERS = {"approval.toml": drive_approval, "poll.toml": drive_poll,
           "reply.toml": drive_reply, "hello.toml": drive_plain, "orders.toml": drive_plain}
EXPECTED.update({
    "approval.toml": {"order": "T-1", "amount": 100, "approved": True, "by": "ada"},
    "reply.toml": {"message_id": "msg-1", "recovered": False},
})


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_runs_to_its_documented_end(procctl: Procctl, path: Path,
                                           tmp_path: Path) -> None:
    assert path.name in DRIVERS, f"add a driver for the new sample {path.name}"
    summary = DRIVERS[path.name](procctl, path, tmp_path)
    assert summary["status"] == "completed", summary
    assert summary["error"] is None
    assert summary["result"] is not None
    if path.name in EXPECTED:
        assert summary["result"] == EXPECTED[path.name]
    if path.name == "poll.toml":
        assert summary["result"]["checks"] == 1


def test_orders_sample_takes_its_params(procctl: Procctl) -> None:
    summary = run_sample(procctl, SAMPLES / "orders.toml", "-p", "threshold=1000")
    assert summary["result"] == {**EXPECTED["orders.toml"], "size": "small"}

    summary = run_sample(procctl, SAMPLES / "orders.toml",
                         "-p", 'orders=[{"sku": "fig; rm -rf /", "qty": 4, "price": 90}]')
    assert summary["result"] == {"orders": 1, "total_cents": 360, "size": "large",
                                 "report": "1. fig; rm -rf / x4 = 360\n"}
