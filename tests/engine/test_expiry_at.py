"""Time to live at a chosen moment: the scheduler's own TTL tick (`Scheduler.expire`)
run by the harness with its clock at a moment the test picks, on the real engine and
store. What `ttl` and `on_expire` promise (docs/process-format.md, "Time to live"):
nothing happens before the TTL runs out; after it, the instance fails with kind
`expired` and its snapshot is gone, or, with `on_expire = { resume = ... }`, it resumes
once with that payload (`resumed_by = "expiry"`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from engine.harness import Engine

GATE = """
[process]
name = "ttl-gate"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "ttl-{{{{ process.instance_id }}}}"
ttl = "1h"
{policy}

[[steps]]
id = "done"
kind = "return"
[steps.value]
by = "{{{{ results['wait'].resumed_by }}}}"
payload = "{{{{ results['wait'].payload }}}}"
"""


def paused_until(engine: Engine, policy: str = "") -> tuple[str, datetime]:
    summary = engine.run(GATE.format(policy=policy))
    assert summary["status"] == "paused", summary
    expires = datetime.fromisoformat(summary["checkpoint"]["expires_at"])
    return summary["instance_id"], expires


def test_a_checkpoint_fails_expired_once_its_ttl_runs_out_and_not_before(
        engine: Engine) -> None:
    instance_id, expires = paused_until(engine)
    assert engine.expire_due(expires - timedelta(seconds=1)) == []
    assert engine.summary(instance_id)["status"] == "paused"
    assert engine.expire_due(expires + timedelta(microseconds=1)) == [instance_id]
    shown = engine.show(instance_id)
    assert shown["status"] == "failed"
    assert shown["error"]["kind"] == "expired"
    assert [e["kind"] for e in shown["history"]][-1] == "instance_expired"
    assert engine.expire_due(expires + timedelta(days=1)) == []  # once


def test_on_expire_resume_runs_the_instance_on_with_the_expiry_payload(
        engine: Engine) -> None:
    instance_id, expires = paused_until(
        engine, 'on_expire = { resume = { approved = false, why = "no answer" } }')
    assert engine.expire_due(expires - timedelta(minutes=1)) == []
    assert engine.expire_due(expires + timedelta(seconds=1)) == [instance_id]
    done = engine.wait(instance_id, ("completed", "failed"))
    assert done["status"] == "completed", done
    assert done["result"]["by"] == "expiry"
    assert done["result"]["payload"] == {"approved": False, "why": "no answer"}
