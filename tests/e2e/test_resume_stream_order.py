"""`procctl resume` and `procctl retry` print the resumed instance's steps, all of them
and in order, after their header: the agent subscribes to the instance before it runs
on (issue 13 found the step lines lost or out of order in 13 of 13 resumes)."""

from __future__ import annotations

from pathlib import Path

from helpers import SAMPLES, Procctl

RESUMED = ["Resumed instance", "▶ wait-for-answer: resumed by manual",
           "✓ wait-for-answer", "✓ approved", "✓ decide", "completed in"]

FAILS_ONCE = """
[process]
name = "fails-once"

[[steps]]
id = "gate"
kind = "checkpoint"
correlation_id = "retry-{{ process.instance_id }}"
continue = true

[[steps]]
id = "check"
task = "file.read"
with = { path = "marker.txt" }

[[steps]]
id = "after"
task = "log"
with = { message = "read it" }
"""


def in_order(text: str, expected: list[str]) -> bool:
    at = 0
    for piece in expected:
        found = text.find(piece, at)
        if found < 0:
            return False
        at = found + len(piece)
    return True


def test_resume_prints_every_step_after_its_header_in_order(procctl: Procctl) -> None:
    for n in range(5):
        procctl.ok("run", SAMPLES / "approval.toml", "-p", f"order=S{n}", "--wait")
        resumed = procctl.ok("resume", "--correlation-id", f"approval-S{n}",
                             "--data", "approved=true")
        assert in_order(resumed.out, RESUMED), resumed.out


def test_retry_prints_every_step_of_the_run_in_order(procctl: Procctl, tmp_path: Path) -> None:
    definition = tmp_path / "fails-once.toml"
    definition.write_text(FAILS_ONCE, encoding="utf-8")
    failed = procctl("run", definition, "--wait")
    assert failed.code == 1, str(failed)
    instance_id = failed.out.split("instance ", 1)[1].split()[0]
    (tmp_path / "marker.txt").write_text("here", encoding="utf-8")
    retried = procctl.ok("retry", instance_id)
    assert in_order(retried.out, ["▶ gate: resumed by", "✓ gate", "✓ check",
                                  "│ read it", "✓ after", "completed in"]), retried.out
