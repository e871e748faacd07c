"""The `checkpoint` and `scheduled_resume` steps.

Reaching a checkpoint: evaluate the correlation ID, build the snapshot from the live
variables (computed when the definition was loaded), commit it (marked `pausing` unless
`continue = true`), run the `commit` block, and pause unless `continue = true`.
Resuming: run `recover` (after a crash or a failure) or take the commit block's stored
value, and go on after the checkpoint. A pausing checkpoint that had not paused when
the agent stopped is recovered by running `recover` and pausing there again: a gate
is never passed without its signal.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from procctl.agent import values
from procctl.agent.definition.model import CheckpointStep, ScheduledResumeStep, Step
from procctl.agent.engine.evaluation import evaluate
from procctl.agent.engine.state import (
    CheckpointInfo,
    InstanceState,
    PauseInstance,
    ResumeInfo,
)
from procctl.agent.errors import StepFailed
from procctl.agent.expressions import Expression
from procctl.agent.faults import halt
from procctl.agent.snapshot import Frame, Snapshot

if TYPE_CHECKING:
    from procctl.agent.engine.runner import Runner


def _stamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _after(seconds: float) -> str:
    return _stamp(datetime.now(UTC) + timedelta(seconds=seconds))


async def _moment(expression: Expression, state: InstanceState, step: Any) -> str:
    """A `resume_at` / `at` value: a datetime, a date (its start, UTC), or an ISO-8601
    string."""
    value = await evaluate(expression, state.context(step))
    if isinstance(value, datetime):
        return _stamp(value)
    if isinstance(value, date):  # a day: its start, in UTC
        return _stamp(datetime(value.year, value.month, value.day, tzinfo=UTC))
    if isinstance(value, str):
        try:
            return _stamp(datetime.fromisoformat(value))
        except ValueError:
            pass
    raise StepFailed(f"{expression.source!r} gave {value!r}, not a date and time "
                     "(use an ISO-8601 string such as 2026-12-01T09:00:00Z)",
                     step_id=step.id, step_path=step.path)


def checkpoint_result(snapshot: Snapshot, *, resumed_by: str | None, payload: Any,
                      value: Any, iteration: int) -> dict[str, Any]:
    """`results["<checkpoint id>"]`: Frends' #result fields plus how it resumed."""
    return {
        "hydration_point": snapshot.checkpoint_id,
        "correlation_id": snapshot.correlation_id,
        "trigger_id": snapshot.trigger_id,
        "variables": dict(snapshot.variables),
        "original_start_utc": snapshot.original_start_utc,
        "iteration": iteration,
        "resumed_by": resumed_by,
        "payload": payload,
        "value": value,
    }


def take_snapshot(runner: Runner, step: Step, state: InstanceState, correlation_id: str,
                  extra: dict[str, Any] | None = None) -> Snapshot:
    """The instance's state at `step`: its position and what later steps can read."""
    live = runner.definition.liveness[step.id]
    stored = {name: state.variables[name] for name in sorted(live.variables)
              if name in state.variables}
    results = dict(state.results) if live.all_results else {
        key: state.results[key] for key in sorted(live.results) if key in state.results}
    process = state.process
    return Snapshot(
        instance_id=state.instance_id, process_name=str(process["name"]),
        process_version=process.get("version"),
        definition_sha256=runner.definition.sha256, checkpoint_id=step.id,
        hydration_point=step.path, correlation_id=correlation_id, position=state.position(),
        variables=stored, results=results, iteration=0,
        original_start_utc=str(process["started_at"]),
        trigger_id=str(process["trigger"].get("id", "cli")), created_at=_after(0),
        extra=extra or {},
    )


async def save_snapshot(runner: Runner, step: Step, state: InstanceState,
                        correlation_id: str, *, expires_at: str | None = None,
                        on_expire_json: str | None = None,
                        extra: dict[str, Any] | None = None,
                        pausing: bool = False) -> Snapshot:
    """Take the snapshot at `step`, commit it durably, record `checkpoint_saved`."""
    snapshot = take_snapshot(runner, step, state, correlation_id, extra)
    try:
        size = await runner.hooks.save_checkpoint(step, snapshot, expires_at=expires_at,
                                                  on_expire_json=on_expire_json,
                                                  pausing=pausing)
    except TypeError as exc:
        raise StepFailed(f"a live variable cannot be stored: {exc}", step_id=step.id,
                         step_path=step.path, kind="snapshot") from exc
    await runner.emit("checkpoint_saved", step, {
        "correlation_id": correlation_id, "variables": sorted(snapshot.variables),
        "bytes": size, "results": sorted(snapshot.results), "expires_at": expires_at})
    return snapshot


async def run_checkpoint_step(runner: Runner, step: CheckpointStep, state: InstanceState,
                              resume: list[Frame] | None = None) -> Any:
    context = state.context(step)
    if step.correlation_id is not None:
        correlation_id = str(await evaluate(step.correlation_id, context))
    else:
        correlation_id = f"{state.instance_id}:{step.id}"
    if not correlation_id.strip():
        raise StepFailed("correlation_id is empty", step_id=step.id, step_path=step.path)
    on_expire = None
    if step.on_expire == "resume":
        on_expire = json.dumps({"action": "resume",
                                "payload": values.encode(step.expire_payload)})
    expires_at = _after(step.ttl) if step.ttl is not None else None
    snapshot = await save_snapshot(runner, step, state, correlation_id,
                                   expires_at=expires_at, on_expire_json=on_expire,
                                   pausing=not step.continue_)
    state.checkpoint = CheckpointInfo(step.id, correlation_id, 0)
    value = await runner.block_value(step.commit, "commit", state)
    await halt("after_checkpoint_commit")
    state.checkpoint.value = value
    result = checkpoint_result(snapshot, resumed_by=None, payload=None, value=value, iteration=0)
    if step.continue_:
        return result
    await _pause(runner, step, state, correlation_id, value)


async def _pause(runner: Runner, step: CheckpointStep, state: InstanceState,
                 correlation_id: str, value: Any) -> NoReturn:
    """Pause at `step` (its resume_after / resume_at evaluated now) with `value` as the
    value a resume takes."""
    resume_at = None
    if step.resume_after is not None:
        resume_at = _after(step.resume_after)
    elif step.resume_at is not None:
        resume_at = await _moment(step.resume_at, state, step)
    await runner.hooks.pause(step, {"correlation_id": correlation_id, "resume_at": resume_at},
                             commit_value=value, resume_at=resume_at)
    raise PauseInstance()


async def resume_checkpoint(runner: Runner, step: CheckpointStep, state: InstanceState,
                            info: ResumeInfo) -> Any:
    """Go on after the checkpoint the snapshot was taken at."""
    snapshot = info.snapshot
    state.checkpoint = CheckpointInfo(step.id, snapshot.correlation_id, info.iteration)
    await runner.emit("instance_resumed", step, {
        "resumed_by": info.resumed_by, "iteration": info.iteration,
        "correlation_id": snapshot.correlation_id, "recover": info.run_recover})
    await halt("after_snapshot_loaded")
    if info.run_recover:
        await halt("in_recover")
        value = await runner.block_value(step.recover, "recover", state)
    else:
        value = info.commit_value
    state.checkpoint.value = value
    if info.pause_again:  # it had not paused: its recover value is the commit value now
        await halt("before_repause")
        await _pause(runner, step, state, snapshot.correlation_id, value)
    await halt("after_resume_value")
    return checkpoint_result(snapshot, resumed_by=info.resumed_by, payload=info.payload,
                             value=value, iteration=info.iteration)


async def run_scheduled_resume_step(runner: Runner, step: ScheduledResumeStep,
                                    state: InstanceState,
                                    resume: list[Frame] | None = None) -> Any:
    """Pause now; resume from the last checkpoint later (each resume is an iteration)."""
    last = state.checkpoint
    if last is None:
        raise StepFailed("no checkpoint has been reached to resume from",
                         step_id=step.id, step_path=step.path)
    if step.max_iterations is not None and last.iteration >= step.max_iterations:
        raise StepFailed(
            f"gave up after {last.iteration} scheduled resume(s) from checkpoint "
            f"{last.step_id!r} (max_iterations = {step.max_iterations})",
            step_id=step.id, step_path=step.path, kind="max_iterations")
    if step.after is not None:
        resume_at = _after(step.after)
    else:
        assert step.at is not None
        resume_at = await _moment(step.at, state, step)
    await runner.hooks.pause(step, {"correlation_id": last.correlation_id,
                                    "resume_at": resume_at, "checkpoint": last.step_id},
                             commit_value=last.value, resume_at=resume_at)
    raise PauseInstance()
