"""Every sample in samples/ runs to its documented end through a real agent (the
session's shared one: each sample reads only its own instances)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLES, Procctl, wait_settled

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


def drive_shapes(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    """`run --wait` returns at the intermediate_return; the instance goes on to the end."""
    result = procctl("run", path, "--wait", "--json")
    assert result.code == 0, str(result)
    acked = result.json()
    assert acked["status"] == "running", acked
    assert acked["intermediate"] == {"accepted": True, "order": "ORD-1042", "lines": 3}
    shown = wait_settled(procctl, acked["instance_id"], "completed")
    kinds = [event["kind"] for event in shown["history"]]
    assert "scope_caught" in kinds  # no samples/rates/: the booking took the flat rate
    assert [event["data"] for event in shown["history"] if event["kind"] == "branch_taken"] == [
        {"branch": "eu"}, {"branches": ["coupon", "gift", "padding"]}]
    return shown


def drive_batch(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    """One child instance of invoice.toml per customer; the failed one is caught."""
    summary = run_sample(procctl, path)
    children = [row for row in procctl.ok("list", "--process", "invoice", "--json").json()
                if row["parent_id"] == summary["instance_id"]]
    assert sorted((row["params"]["customer"], row["status"]) for row in children) == [
        ("acme", "completed"), ("globex", "completed"), ("initech", "failed")]
    return summary


def drive_plugin(procctl: Procctl, path: Path, tmp_path: Path) -> dict[str, Any]:
    """The plugin's functions run; a title with nothing to slug makes slugify raise,
    and the sample's scope falls back to the slug "post"."""
    summary = run_sample(procctl, path)
    fallback = run_sample(procctl, path, "-p", "title=?!")
    assert fallback["result"] == {**EXPECTED["plugin.toml"], "slug": "post",
                                  "title_ok": False}
    return summary


#: How each sample reaches its documented end. A new sample must be added here.
DRIVERS = {"approval.toml": drive_approval, "poll.toml": drive_poll,
           "reply.toml": drive_reply, "hello.toml": drive_plain, "orders.toml": drive_plain,
           "shapes.toml": drive_shapes, "batch.toml": drive_batch,
           "invoice.toml": drive_plain, "plugin.toml": drive_plugin}
EXPECTED.update({
    "approval.toml": {"order": "T-1", "amount": 100, "approved": True, "by": "ada"},
    "reply.toml": {"message_id": "msg-1", "recovered": False},
    "shapes.toml": {
        "order": "ORD-1042", "carrier": "postnord", "extras": ["coupon", "gift", "padding"],
        "checks": {"stock": {"reserved": 8}, "payment": {"authorised_cents": 8550},
                   "fraud": {"score": 0.02}},
        "parcels": [2000, 1550], "rate": "flat", "total_cents": 9540},
    "batch.toml": {"invoices": ["INV-ACME-0001", "INV-GLOBEX-0002"], "gross_cents": 27144,
                   "skipped": ["initech"]},
    "invoice.toml": {"invoice": "INV-ACME-0001", "customer": "acme", "lines": 2,
                     "net_cents": 7490, "vat_cents": 1798, "gross_cents": 9288},
    "plugin.toml": {"slug": "creme-brulee-2-ways", "words": 22, "lines": 3,
                    "top": [["the", 6], ["custard", 2]], "reading_seconds": 7,
                    "title_ok": True},
})


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_runs_to_its_documented_end(shared_procctl: Procctl, path: Path,
                                           tmp_path: Path) -> None:
    assert path.name in DRIVERS, f"add a driver for the new sample {path.name}"
    summary = DRIVERS[path.name](shared_procctl, path, tmp_path)
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
