"""Absolute-time scheduling through `procctl` and a real agent: a checkpoint's
`resume_at` with an offset is shown in UTC by `run --wait` and `list-paused`, and one
whose moment has passed is resumed by the agent's own clock at its next tick.

The cases themselves (offsets, naive, dates, zones across a daylight-saving change,
bad values, scheduled_resume's `at`) are checked in-process on the real engine and
store: tests/engine/test_schedule_at.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from helpers import Procctl, run_paused, unique_key, wait_settled

WriteDefinition = Callable[..., Path]

AT = """
[process]
name = "e2e-resume-at"
[process.params.key]
type = "str"
[process.params.at]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "at-{{ key }}"
resume_at = "{{ at }}"

[[steps]]
id = "done"
kind = "return"
value = { by = "{{ results['wait'].resumed_by }}" }
"""


def test_resume_at_is_kept_in_utc_and_a_past_one_resumes_by_itself(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(AT)
    future_key, past_key = unique_key(), unique_key()
    future = run_paused(shared_procctl, path, "-p", f"key={future_key}",
                        "-p", "at=2031-06-01T09:00:00+02:00")
    assert future["checkpoint"]["resume_at"] == "2031-06-01T07:00:00.000000+00:00"
    rows = shared_procctl.ok("list-paused", "--json").json()
    assert [r["resume_at"] for r in rows if r["instance_id"] == future["instance_id"]] == [
        "2031-06-01T07:00:00.000000+00:00"]

    # Two seconds ago, written in another zone: due at once.
    past_moment = (datetime.now(UTC) - timedelta(seconds=2)).astimezone(
        timezone(timedelta(hours=-7)))
    started = shared_procctl.ok("run", path, "--json", "-p", f"key={past_key}",
                                "-p", f"at={past_moment.isoformat()}").json()
    shown = wait_settled(shared_procctl, started["instance_id"], timeout=20)
    assert shown["result"] == {"by": "schedule"}
    assert [e["kind"] for e in shown["history"]].count("scheduled_resume") == 1
