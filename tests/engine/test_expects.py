"""A checkpoint's `expects`: checked at load, and at the door, where a signal whose
payload does not fit is refused with the field and why while the instance stays
paused (a signal file goes to rejected/, a `signal` step fails with signal_rejected).
Without `expects`, the fields later steps read are found statically."""

from __future__ import annotations

import json

from engine.harness import Engine

from procctl.cli.payload_hints import expected_fields, fields_text, resume_line

APPROVAL = """
[process]
name = "approval"

[process.params.order]
type = "str"
default = "A-1"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "approval-{{ order }}"
expects = { approved = "bool", by = "str", note = "str?" }

[[steps]]
id = "done"
kind = "return"
value = { approved = "{{ results.wait.payload.approved }}", by = "{{ results.wait.payload.by }}" }
"""


def _paused(engine: Engine, order: str = "A-1") -> str:
    summary = engine.run(APPROVAL, {"order": order})
    assert summary["status"] == "paused", summary
    return str(summary["instance_id"])


def test_a_signal_without_a_declared_field_is_refused_and_the_instance_stays_paused(
        engine: Engine) -> None:
    instance_id = _paused(engine)
    out = engine.resume("approval-A-1", {"approved": True}, source="cli:test")
    signal = out["signal"]
    assert signal["status"] == "rejected"
    assert "payload field 'by' (str) is missing" in signal["reason"]
    assert "instance" not in out
    assert engine.summary(instance_id)["status"] == "paused"
    # The sender can try again with the right payload: it fits and the run goes on.
    out = engine.resume("approval-A-1", {"approved": True, "by": "ada"}, source="cli:test")
    assert out["signal"]["status"] == "applied"
    assert out["instance"]["status"] == "completed"
    assert out["instance"]["result"] == {"approved": True, "by": "ada"}


def test_a_wrongly_typed_field_is_refused_naming_the_field_and_its_type(
        engine: Engine) -> None:
    _paused(engine)
    out = engine.resume("approval-A-1", {"approved": "yes", "by": "ada"})
    assert out["signal"]["status"] == "rejected"
    assert "'approved' must be bool, not str \"yes\"" in out["signal"]["reason"]


def test_a_signal_file_that_does_not_fit_goes_to_rejected_with_its_reason(
        engine: Engine) -> None:
    instance_id = _paused(engine)
    engine.signal_file({"correlation_id": "approval-A-1", "payload": {"by": "ada"}},
                       name="answer.json")
    rejected = engine.signals_dir / "rejected"
    assert (rejected / "answer.json").exists()
    reasons = " ".join(p.read_text(encoding="utf-8") for p in rejected.iterdir()
                       if p.name != "answer.json")
    assert "'approved' (bool) is missing" in reasons
    assert engine.summary(instance_id)["status"] == "paused"


def test_a_signal_step_whose_payload_does_not_fit_fails_with_signal_rejected(
        engine: Engine) -> None:
    target = _paused(engine, "B-2")
    sender = engine.run("""
[process]
name = "sender"

[[steps]]
id = "answer"
kind = "signal"
correlation_id = "approval-B-2"
payload = { approved = "yes" }
""", name="sender.toml")
    assert sender["status"] == "failed"
    assert sender["error"]["kind"] == "signal_rejected"
    assert "'approved' must be bool" in sender["error"]["message"]
    assert engine.summary(target)["status"] == "paused"


def test_an_optional_field_may_be_left_out_or_null(engine: Engine) -> None:
    _paused(engine)
    out = engine.resume("approval-A-1", {"approved": False, "by": "bob", "note": None})
    assert out["signal"]["status"] == "applied"
    assert out["instance"]["status"] == "completed"


def test_an_unknown_type_in_expects_is_an_error_at_its_line(engine: Engine) -> None:
    found = engine.validate(APPROVAL.replace('by = "str"', 'by = "strng"'))
    assert found["errors"] == 1
    [problem] = found["problems"]
    assert problem["line"] == 13  # the line of expects (the text starts with a newline)
    assert "field 'by' has unknown type 'strng'" in problem["message"]
    assert "did you mean 'str'?" in problem["hint"]


def test_an_expiry_payload_that_does_not_fit_expects_is_an_error(engine: Engine) -> None:
    found = engine.validate(APPROVAL.replace(
        'expects =', 'on_expire = { resume = { approved = "no" } }\nexpects ='))
    assert found["errors"] == 1
    assert "on_expire" in found["problems"][0]["message"]
    assert "'approved' must be bool" in found["problems"][0]["message"]


def test_argv_as_a_string_is_a_validation_error_naming_the_list_to_write(
        engine: Engine) -> None:
    found = engine.validate("""
[process]
name = "listing"

[[steps]]
id = "list"
task = "exec"
with = { argv = "ls -l" }
""")
    assert found["errors"] == 1
    [problem] = found["problems"]
    assert problem["line"] == 8  # the line of `with`
    assert "argv must be a list" in problem["message"]
    assert 'argv = ["ls", "-l"]' in problem["hint"]


def test_argv_from_one_expression_is_let_through(engine: Engine) -> None:
    found = engine.validate("""
[process]
name = "listing"

[process.params.command]
type = "list"
default = ["true"]

[[steps]]
id = "list"
task = "exec"
with = { argv = "{{ command }}" }
""")
    assert found["valid"], found


def test_declared_fields_and_the_resume_line_for_them(engine: Engine) -> None:
    definition = engine.load(APPROVAL)
    fields = expected_fields(definition, "wait")
    assert [(f.name, f.type, f.optional, f.declared) for f in fields] == [
        ("approved", "bool", False, True), ("by", "str", False, True),
        ("note", "str", True, True)]
    assert fields_text(fields) == "approved (bool), by (str), note (str, optional)"
    line = resume_line("approval-A 1", fields)
    assert line == ("procctl resume --correlation-id 'approval-A 1' --data approved=true "
                    "--data by=TEXT")


def test_the_resume_line_resumes_the_instance_it_was_printed_for(engine: Engine) -> None:
    """The example values of the line fit the declaration: sent as `procctl resume`
    sends `--data` (JSON, else text), they are applied."""
    _paused(engine)
    fields = expected_fields(engine.load(APPROVAL), "wait")
    words = resume_line("approval-A-1", fields).split()
    payload: dict[str, object] = {}
    for index, word in enumerate(words):
        if word == "--data":
            name, _, text = words[index + 1].partition("=")
            try:
                payload[name] = json.loads(text)
            except ValueError:
                payload[name] = text
    out = engine.resume("approval-A-1", payload)
    assert out["signal"]["status"] == "applied", out
