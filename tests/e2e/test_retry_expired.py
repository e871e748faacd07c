"""`procctl retry` of an instance whose checkpoint expired is refused (exit 8).

Expiry discards the snapshot, so there is nothing to go on from; restarting would run
the steps before the checkpoint, and its commit block, a second time. The refusal names
the instance, when the checkpoint expired and what to do instead.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Procctl, run_paused, show_json, wait_for, wait_settled

from procctl.store import Store

PAUSES = """
[process]
name = "expires-paused"

[[steps]]
id = "before"
task = "log"
with = { message = "before the checkpoint" }

[[steps]]
id = "wait"
kind = "checkpoint"
ttl = "1s"

[[steps.commit]]
id = "send"
task = "log"
with = { message = "commit block ran" }

[[steps]]
id = "done"
kind = "return"
value = "finished"
"""

FAILS_AFTER = """
[process]
name = "expires-failed"

[[steps]]
id = "before"
task = "log"
with = { message = "before the checkpoint" }

[[steps]]
id = "mark"
kind = "checkpoint"
continue = true
ttl = "1s"

[[steps]]
id = "boom"
kind = "throw"
message = "fails after its checkpoint"
"""


def _log_count(procctl: Procctl, instance_id: str, message: str) -> int:
    history = show_json(procctl, instance_id)["history"]
    return sum(1 for e in history if e["kind"] == "log" and e["data"]["message"] == message)


def _assert_refused(procctl: Procctl, instance_id: str, definition: Path) -> None:
    refused = procctl("retry", instance_id)
    assert refused.code == 8, str(refused)
    first = refused.err.splitlines()[0]
    assert first.startswith(f"Error: instance {instance_id} cannot be retried: its "
                            "checkpoint expired at "), str(refused)
    assert "the snapshot is gone" in first, str(refused)
    assert f"procctl run {definition}" in refused.err, str(refused)
    as_json = procctl("retry", instance_id[:6], "--json")
    assert as_json.code == 8 and as_json.out == "", str(as_json)
    shown = show_json(procctl, instance_id)
    assert shown["status"] == "failed" and shown["error"]["kind"] == "expired"
    assert "retry_command" not in shown, shown
    assert not any(e["kind"] == "instance_restarted" for e in shown["history"])
    assert _log_count(procctl, instance_id, "before the checkpoint") == 1
    human = procctl.ok("show", instance_id)
    assert "procctl retry" not in human.out, str(human)
    assert "cannot be retried" in human.out, str(human)


def test_retry_of_a_paused_instance_that_expired_is_refused(
        procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    definition = write_definition(PAUSES, "pauses.toml").resolve()
    instance_id = run_paused(procctl, definition)["instance_id"]
    wait_settled(procctl, instance_id, "failed", timeout=15)  # the agent expires it
    _assert_refused(procctl, instance_id, definition)
    assert _log_count(procctl, instance_id, "commit block ran") == 1


def test_retry_of_a_failed_instance_whose_checkpoint_expired_is_refused(
        procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    definition = write_definition(FAILS_AFTER, "fails.toml").resolve()
    failed = procctl("run", definition, "--wait", "--json")
    assert failed.code == 1, str(failed)
    instance_id = failed.json()["instance_id"]

    def expired() -> bool:  # the agent expires it within a second or so; read as show does
        store = Store(procctl.home / "procctl.db", must_exist=True)
        try:
            return '"expired"' in (store.get_instance(instance_id).error_json or "")
        finally:
            store.close()

    wait_for(expired, timeout=15, message="the failed instance's checkpoint to expire")
    _assert_refused(procctl, instance_id, definition)
