"""Absolute-time scheduling on the real engine and store (in-process harness): a
checkpoint's `resume_at` and a scheduled_resume step's `at`, given as an ISO datetime
with an offset, a naive one (UTC, as docs/process-format.md says), a date alone
(midnight UTC), a moment already past (the next tick resumes it), a zoned datetime on
either side of a daylight-saving change, and a value that is no moment at all.

The clock is the scheduler's own call (`Store.due_resumes(now)`, then
`Lifecycle.resume_scheduled`) made at a moment the test picks: a resume time is due
exactly when it has come, not a microsecond before. The end-to-end check that a real
agent's clock does this by itself is tests/e2e/test_schedule_at.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from engine.harness import Engine, Launch

GATE = """
[process]
name = "at-gate"
[process.params.key]
type = "str"
[process.params.when]
type = "any"

[[steps]]
id = "before"
task = "log"
with = {{ message = "before the pause" }}

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "at-{{{{ key }}}}"
resume_at = {resume_at}

[[steps]]
id = "done"
kind = "return"
[steps.value]
by = "{{{{ results['wait'].resumed_by }}}}"
iteration = "{{{{ results['wait'].iteration }}}}"
"""


def gate(resume_at: str = '"{{ when }}"') -> str:
    """The gate definition with `resume_at` as given (a TOML string)."""
    return GATE.format(resume_at=resume_at)


def stamp(moment: datetime) -> str:
    """A moment as the store keeps it (ISO-8601 UTC, microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def paused_until(engine: Engine, summary: dict[str, Any]) -> str:
    """The resume time a paused instance keeps, checked against its pause event."""
    assert summary["status"] == "paused", summary
    resume_at = summary["checkpoint"]["resume_at"]
    [paused] = [e for e in engine.history(summary["instance_id"])
                if e["kind"] == "instance_paused"]
    assert paused["data"]["resume_at"] == resume_at
    return str(resume_at)


def resumes_exactly_at(engine: Engine, instance_id: str, moment: datetime) -> None:
    """Not due a microsecond before `moment`; due and resumed (by the schedule) at it."""
    assert engine.resume_due(moment - timedelta(microseconds=1)) == []
    assert engine.summary(instance_id)["status"] == "paused"
    assert engine.resume_due(moment) == [instance_id]
    done = engine.wait(instance_id, ("completed", "failed"))
    assert done["status"] == "completed", done
    assert done["result"] == {"by": "schedule", "iteration": 1}
    kinds = [e["kind"] for e in done["history"]]
    assert kinds.index("instance_paused") < kinds.index("scheduled_resume") \
        < kinds.index("instance_resumed")
    # it went on after its checkpoint: the step before it ran once
    assert [e["data"]["message"] for e in done["history"] if e["kind"] == "log"] == [
        "before the pause"]


@pytest.mark.parametrize(("text", "meant"), [
    # an offset: that moment, kept in UTC
    ("2031-06-01T09:00:00+02:00", datetime(2031, 6, 1, 7, 0, tzinfo=UTC)),
    ("2031-06-01T09:00:00Z", datetime(2031, 6, 1, 9, 0, tzinfo=UTC)),
    ("2031-06-01T09:00:00.250-05:30", datetime(2031, 6, 1, 14, 30, 0, 250_000, tzinfo=UTC)),
    # no offset: UTC
    ("2031-06-01T09:00:00", datetime(2031, 6, 1, 9, 0, tzinfo=UTC)),
    # a date alone: its midnight, UTC
    ("2031-06-01", datetime(2031, 6, 1, 0, 0, tzinfo=UTC)),
])
def test_resume_at_text_resumes_at_that_moment_in_utc(
        engine: Engine, text: str, meant: datetime) -> None:
    summary = engine.run(gate(f'"{text}"'), {"key": "k", "when": None})
    assert paused_until(engine, summary) == stamp(meant)
    resumes_exactly_at(engine, summary["instance_id"], meant)


def test_resume_at_from_an_expression_a_date_or_a_datetime_value(engine: Engine) -> None:
    path = engine.write(gate())
    meant = datetime(2031, 6, 1, 9, 0, tzinfo=UTC)
    as_date, as_datetime, as_naive = engine.run_many(
        Launch(path, {"key": "date", "when": meant.date()}),
        Launch(path, {"key": "aware", "when": meant.astimezone(ZoneInfo("Asia/Tokyo"))}),
        Launch(path, {"key": "naive", "when": meant.replace(tzinfo=None)}))
    # a date value: its midnight UTC; datetime values: the same moment, whatever zone
    # they were written in; a naive one is UTC
    assert paused_until(engine, as_date) == stamp(datetime(2031, 6, 1, tzinfo=UTC))
    assert paused_until(engine, as_datetime) == stamp(meant)
    assert paused_until(engine, as_naive) == stamp(meant)
    assert engine.due(meant - timedelta(seconds=1)) == [as_date["instance_id"]]
    assert sorted(engine.due(meant)) == sorted(
        s["instance_id"] for s in (as_date, as_datetime, as_naive))


def test_a_zoned_time_keeps_its_wall_clock_across_a_daylight_saving_change(
        engine: Engine) -> None:
    # A plugin computes 09:00 in Paris on a given day: the day before and the day of
    # the change to summer time (last Sunday of March 2031: 30 March) are 23 hours
    # apart in UTC, not 24.
    engine.write("from datetime import datetime\n"
                 "from zoneinfo import ZoneInfo\n\n\n"
                 "def nine_in(day, zone):\n"
                 "    return datetime.fromisoformat(day).replace(hour=9, tzinfo=ZoneInfo(zone))\n",
                 name="zoned_tasks.py")
    path = engine.write(gate('"{{ results[\'when-local\'] }}"').replace(
        '[[steps]]\nid = "before"',
        '[[steps]]\nid = "when-local"\ntask = "zoned_tasks:nine_in"\n'
        'with = { day = "{{ key }}", zone = "Europe/Paris" }\n\n[[steps]]\nid = "before"'))
    winter, summer = engine.run_many(Launch(path, {"key": "2031-03-29", "when": None}),
                                     Launch(path, {"key": "2031-03-30", "when": None}))
    assert paused_until(engine, winter) == stamp(datetime(2031, 3, 29, 8, 0, tzinfo=UTC))
    assert paused_until(engine, summer) == stamp(datetime(2031, 3, 30, 7, 0, tzinfo=UTC))
    resumes_exactly_at(engine, winter["instance_id"], datetime(2031, 3, 29, 8, 0, tzinfo=UTC))
    assert engine.summary(summer["instance_id"])["status"] == "paused"  # 23 hours to go
    resumes_exactly_at(engine, summer["instance_id"], datetime(2031, 3, 30, 7, 0, tzinfo=UTC))


def test_a_moment_already_past_resumes_at_the_next_tick(engine: Engine) -> None:
    summary = engine.run(gate('"2001-01-01T00:00:00Z"'), {"key": "past", "when": None})
    assert paused_until(engine, summary) == stamp(datetime(2001, 1, 1, tzinfo=UTC))
    # the scheduler's next tick, at the wall clock's now
    assert engine.resume_due(datetime.now(UTC)) == [summary["instance_id"]]
    done = engine.wait(summary["instance_id"], ("completed", "failed"))
    assert done["result"] == {"by": "schedule", "iteration": 1}


def test_a_signal_before_the_time_resumes_it_and_the_schedule_then_finds_nothing(
        engine: Engine) -> None:
    summary = engine.run(gate('"2031-06-01T09:00:00Z"'), {"key": "early", "when": None})
    paused_until(engine, summary)
    resumed = engine.resume("at-early", {"ok": True})
    assert resumed["instance"]["result"] == {"by": "signal", "iteration": 1}
    assert engine.resume_due(datetime(2031, 6, 2, tzinfo=UTC)) == []


@pytest.mark.parametrize("bad", ['"next tuesday"', '"2031-13-01"'])
def test_a_constant_that_is_no_moment_is_refused_when_the_definition_loads(
        engine: Engine, bad: str) -> None:
    found = engine.validate(gate(bad))
    assert not found["valid"]
    [problem] = found["problems"]
    assert (problem["step_id"], problem["step_path"], problem["line"]) == ("wait", "steps[1]", 18)
    assert problem["message"] == f"resume_at: {bad.strip(chr(34))!r} is not a date and time"
    assert "ISO-8601" in problem["hint"]


@pytest.mark.parametrize("bad", ['"{{ 42 }}"', '"{{ when }}"'])
def test_an_expression_that_gives_no_moment_fails_the_step_naming_it(
        engine: Engine, bad: str) -> None:
    summary = engine.run(gate(bad), {"key": "bad", "when": "next tuesday"})
    assert summary["status"] == "failed", summary
    error = summary["error"]
    assert (error["step_id"], error["step_path"]) == ("wait", "steps[1]")
    assert "not a date and time" in error["message"]
    assert "ISO-8601" in error["message"]
    # nothing was paused: no resume time kept
    assert engine.due(datetime(9999, 1, 1, tzinfo=UTC)) == []


POLL = """
[process]
name = "at-poll"

[[steps]]
id = "mark"
kind = "checkpoint"
correlation_id = "poll-at"
continue = true

[[steps]]
id = "tick"
task = "log"
with = { message = "tick {{ results['mark'].iteration }}" }

[[steps]]
id = "enough"
kind = "if"
condition = "results['mark'].iteration >= 2"
[[steps.then]]
id = "done"
kind = "return"
value = "{{ results['mark'].iteration }}"

[[steps]]
id = "again"
kind = "scheduled_resume"
at = "2031-01-0{{ results['mark'].iteration + 1 }}T06:00:00+01:00"
max_iterations = 5
"""


def test_scheduled_resume_at_resumes_from_the_last_checkpoint_at_each_moment(
        engine: Engine) -> None:
    first = engine.run(POLL)
    assert first["status"] == "paused", first
    assert first["checkpoint"]["step_id"] == "mark"  # it resumes from the checkpoint
    assert first["checkpoint"]["resume_at"] == stamp(datetime(2031, 1, 1, 5, 0, tzinfo=UTC))
    instance_id = first["instance_id"]

    assert engine.resume_due(datetime(2031, 1, 1, 4, 59, 59, tzinfo=UTC)) == []
    assert engine.resume_due(datetime(2031, 1, 1, 5, 0, tzinfo=UTC)) == [instance_id]
    second = engine.wait(instance_id, "paused")
    assert second["checkpoint"]["iteration"] == 1
    assert second["checkpoint"]["resume_at"] == stamp(datetime(2031, 1, 2, 5, 0, tzinfo=UTC))

    assert engine.resume_due(datetime(2031, 1, 2, 5, 0, tzinfo=UTC)) == [instance_id]
    done = engine.wait(instance_id, ("completed", "failed"))
    assert done["status"] == "completed", done
    assert done["result"] == 2
    ticks = [e["data"]["message"] for e in done["history"] if e["kind"] == "log"]
    assert ticks == ["tick 0", "tick 1", "tick 2"]
    resumed = [e["data"]["resumed_by"] for e in done["history"]
               if e["kind"] == "instance_resumed"]
    assert resumed == ["schedule", "schedule"]


GIVE_UP = """
[process]
name = "give-up"

[process.params.key]
type = "str"

[[steps]]
id = "watch"
kind = "checkpoint"
correlation_id = "give-up-{{ key }}"
continue = true

[[steps]]
id = "again"
kind = "scheduled_resume"
after = "250ms"
max_iterations = 2

[[steps]]
id = "done"
kind = "return"
value = "never"
"""


def test_scheduled_resume_past_max_iterations_fails(engine: Engine) -> None:
    # Moved from tests/e2e/test_schedule_expiry.py (same definition and assertions): the
    # clock's ticks are made here, a minute apart.
    summary = engine.run(GIVE_UP, cli=["key=k"])
    assert summary["status"] == "paused", summary
    assert summary["checkpoint"]["resume_at"] is not None
    instance_id = summary["instance_id"]
    tick = datetime.now(UTC)
    for _ in range(3):
        tick += timedelta(minutes=1)
        if engine.resume_due(tick):
            engine.wait(instance_id, ("paused", "failed"))
    shown = engine.show(instance_id)
    assert shown["status"] == "failed", shown
    error = shown["error"]
    assert error["step_id"] == "again"
    assert error["kind"] == "max_iterations"
    assert error["message"] == ("gave up after 2 scheduled resume(s) from checkpoint "
                                "'watch' (max_iterations = 2)")
    assert shown["result"] is None
    resumes = [e for e in shown["history"] if e["kind"] == "scheduled_resume"]
    assert len(resumes) == 2
