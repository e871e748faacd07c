"""What a paused instance needs, through the real command and agent: `validate` lists
the payload fields a checkpoint expects (declared, or read by later steps); `resume`
with a payload that does not fit exits 7 naming the field and the instance stays
paused; an instance that failed on a missing payload field is told to resume with it,
not to retry; `argv = "ls -l"` is a validation error."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import SAMPLES, Procctl, run_paused, show_json, unique_key

WriteDefinition = Callable[..., Path]

#: the approval sample without its `expects` (what later steps read is found instead)
UNDECLARED = (SAMPLES / "approval.toml").read_text(encoding="utf-8").replace(
    'expects = { approved = "bool", by = "str?" }\n', "")


def test_validate_lists_the_declared_fields(shared_procctl: Procctl) -> None:
    done = shared_procctl.ok("validate", "samples/approval.toml")
    assert done.out.splitlines() == [
        "✓ samples/approval.toml: process approval, 5 step(s), no problems",
        "  param order: str, optional, default 'A-1'",
        "  param amount: int, optional, default 100",
        "  checkpoint wait-for-answer stores: amount, order",
        "  checkpoint wait-for-answer expects: approved (bool), by (str, optional)",
    ]
    checkpoints = shared_procctl.ok("validate", "samples/approval.toml", "--json").json()[
        "checkpoints"]
    assert checkpoints["wait-for-answer"]["payload"] == {"declared": True, "fields": [
        {"name": "approved", "type": "bool", "optional": False},
        {"name": "by", "type": "str", "optional": True}]}


def test_validate_lists_the_fields_later_steps_read_without_expects(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(UNDECLARED, "approval.toml")
    done = shared_procctl.ok("validate", path, cwd=path.parent)
    assert done.out.splitlines()[-1] == ("  checkpoint wait-for-answer payload fields read "
                                         "later (no expects): approved, by (optional)")


def test_resume_with_a_payload_that_does_not_fit_exits_7_and_it_stays_paused(
        shared_procctl: Procctl) -> None:
    key = unique_key()
    paused = run_paused(shared_procctl, SAMPLES / "approval.toml", "-p", f"order={key}")
    refused = shared_procctl("resume", "--correlation-id", f"approval-{key}",
                             "--data", "approved=yes", "--data", "by=ada")
    assert refused.code == 7, str(refused)
    # docs/signals.md, "procctl resume"
    assert refused.err.splitlines()[0] == (
        f"Error: not resumed: payload refused by the checkpoint of instance "
        f"{paused['instance_id']}: payload field 'approved' must be bool, not str \"yes\" "
        "(expects approved: bool, by: str?)")
    assert refused.err.splitlines()[1] == (
        "Hint: send a payload that fits, e.g.: procctl resume --correlation-id "
        f"approval-{key} --data approved=true")
    assert show_json(shared_procctl, paused["instance_id"])["status"] == "paused"
    missing = shared_procctl("resume", "--correlation-id", f"approval-{key}",
                             "--data", "by=ada")
    assert missing.code == 7, str(missing)
    assert "payload field 'approved' (bool) is missing" in missing.err
    done = shared_procctl("resume", "--correlation-id", f"approval-{key}",
                          "--data", "approved=true", "--json")
    assert done.code == 0, str(done)
    assert show_json(shared_procctl, paused["instance_id"])["result"]["approved"] is True


def test_a_failure_on_a_missing_payload_field_says_to_resume_with_it_not_to_retry(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    key = unique_key()
    path = write_definition(UNDECLARED.replace('name = "approval"', 'name = "undeclared"'),
                            "approval.toml")
    run_paused(shared_procctl, path, "-p", f"order={key}")
    failed = shared_procctl("resume", "--correlation-id", f"approval-{key}", "--data", "by=ada")
    assert failed.code == 1, str(failed)
    assert ("The signal that resumed it had no payload field 'approved': send it again with "
            "the field (a retry would fail the same way): procctl resume --correlation-id "
            f"approval-{key} --data approved=VALUE") in failed.err
    assert "procctl retry" not in failed.err
    instance_id = failed.err.split("instance ", 1)[1].split()[0]
    shown = shared_procctl.ok("show", instance_id)
    assert f"procctl resume --correlation-id approval-{key} --data approved=" in shown.out
    assert "procctl retry" not in shown.out
    assert "would fail the same way (no payload field 'approved')" in shown.out
    # The line works: the failed instance takes a signal that carries the field.
    again = shared_procctl("resume", "--correlation-id", f"approval-{key}",
                           "--data", "approved=true", "--json")
    assert again.code == 0, str(again)


def test_argv_as_a_string_is_refused_by_validate(shared_procctl: Procctl,
                                                 write_definition: WriteDefinition) -> None:
    path = write_definition("""[process]
name = "listing"

[[steps]]
id = "list"
task = "exec"
with = { argv = "ls -l" }
""", "listing.toml")
    done = shared_procctl("validate", path.name, cwd=path.parent)
    assert done.code == 3, str(done)
    assert done.err.splitlines() == [
        "Error: listing.toml:7: steps[0] (id 'list'): argv must be a list (the program, "
        "then each argument), not the string 'ls -l'",
        'Hint: write argv = ["ls", "-l"]: exec runs no shell to split it',
    ]
