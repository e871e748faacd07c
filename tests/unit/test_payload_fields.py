"""The payload fields later steps read, found statically (for checkpoints without
`expects`), and whether a payload fits a declaration (the check at the door)."""

from __future__ import annotations

from procctl.agent.decisions import DeliveryTarget, Holder, decide_resume_target
from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import PayloadField
from procctl.agent.definition.payload_fields import (
    expects_from_json,
    expects_json,
    parse_expects,
    payload_fields_read,
    payload_problem,
)
from procctl.cli.payload_hints import missing_field_hint, missing_payload_field, refusal_hint

HEAD = """
[process]
name = "p"

[[steps]]
id = "wait"
kind = "checkpoint"

[[steps]]
id = "other"
kind = "checkpoint"
correlation_id = "other"
"""


def _found(steps: str) -> list[tuple[str, bool]]:
    definition = parse_definition(HEAD + steps, None)
    return [(f.name, f.optional) for f in payload_fields_read(definition, "wait")]


def test_a_field_read_by_index_or_attribute_is_required() -> None:
    assert _found("""
[[steps]]
id = "use"
kind = "set"
[steps.values]
a = "{{ results['wait'].payload.approved }}"
b = "{{ results.wait['payload']['by'] }}"
""") == [("approved", False), ("by", False)]


def test_a_field_read_with_a_default_or_get_is_optional() -> None:
    assert _found("""
[[steps]]
id = "use"
kind = "set"
[steps.values]
a = "{{ results['wait'].payload.note | default('') }}"
b = "{{ results['wait'].payload.get('tag') }}"
""") == [("note", True), ("tag", True)]


def test_a_field_read_once_without_a_default_is_required() -> None:
    assert _found("""
[[steps]]
id = "use"
kind = "set"
values = { a = "{{ results['wait'].payload.by | default('x') }}" }

[[steps]]
id = "decide"
kind = "if"
condition = "results['wait'].payload.by == 'ada'"
then = []
""") == [("by", False)]


def test_reads_in_nested_blocks_count_and_other_checkpoints_do_not() -> None:
    assert _found("""
[[steps]]
id = "decide"
kind = "if"
condition = "results['other'].payload.ok"

[[steps.then]]
id = "inner"
kind = "return"
value = "{{ results['wait'].payload.amount }}"
""") == [("amount", False)]


def test_result_in_the_step_right_after_the_checkpoint_is_its_result() -> None:
    definition = parse_definition("""
[process]
name = "p"

[[steps]]
id = "wait"
kind = "checkpoint"

[[steps]]
id = "use"
kind = "if"
condition = "result.payload.approved"
then = []

[[steps]]
id = "later"
kind = "return"
value = "{{ result.payload.not_this_one }}"
""", None)
    assert [f.name for f in payload_fields_read(definition, "wait")] == ["approved"]


def test_a_payload_read_whole_gives_no_fields() -> None:
    assert _found("""
[[steps]]
id = "use"
kind = "return"
value = "{{ results['wait'].payload }}"
""") == []


EXPECTS = (PayloadField("approved", "bool"), PayloadField("count", "float"),
           PayloadField("note", "str", optional=True))


def test_a_payload_that_fits() -> None:
    assert payload_problem(EXPECTS, {"approved": True, "count": 3}) is None
    assert payload_problem(EXPECTS, {"approved": False, "count": 1.5, "note": None,
                                     "extra": [1]}) is None


def test_what_does_not_fit_is_named() -> None:
    assert payload_problem(EXPECTS, None) == (
        "payload field 'approved' (bool) is missing (expects approved: bool, count: float, "
        "note: str?)")
    assert payload_problem(EXPECTS, [1]) is not None
    assert "not list" in (payload_problem(EXPECTS, [1]) or "")
    assert "'approved' must be bool, not int 1" in (
        payload_problem(EXPECTS, {"approved": 1, "count": 1}) or "")
    assert "'count' must be float, not bool true" in (
        payload_problem(EXPECTS, {"approved": True, "count": True}) or "")
    assert "'approved' is null" in (
        payload_problem(EXPECTS, {"approved": None, "count": 1}) or "")
    assert "'note' must be str" in (
        payload_problem(EXPECTS, {"approved": True, "count": 1, "note": 5}) or "")


def test_no_required_field_takes_no_payload() -> None:
    assert payload_problem((PayloadField("note", "str", optional=True),), None) is None


def test_expects_is_parsed_and_stored_as_it_was_declared() -> None:
    fields, problems = parse_expects({"approved": "bool", "note": "str?", "x": "number",
                                      "y": 3})
    assert fields == (PayloadField("approved", "bool"), PayloadField("note", "str", True))
    assert [message for message, _ in problems] == [
        "expects: field 'x' has unknown type 'number'", "expects: field 'y' has unknown type 3"]
    assert parse_expects("bool")[1]
    definition = parse_definition(HEAD.replace(
        'kind = "checkpoint"\n', 'kind = "checkpoint"\nexpects = { a = "int", b = "any?" }\n',
        1), None)
    step = definition.steps[0]
    assert expects_from_json(expects_json(step)) == (
        PayloadField("a", "int"), PayloadField("b", "any", True))
    assert expects_json(definition.steps[1]) is None
    assert expects_from_json(None) is None


def test_a_read_of_a_field_expects_does_not_declare_is_a_warning() -> None:
    definition = parse_definition("""
[process]
name = "p"

[[steps]]
id = "wait"
kind = "checkpoint"
expects = { approved = "bool" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['wait'].payload.aproved }} {{ results['wait'].payload.note | default('') }}"
""", "p.toml")
    [warning] = definition.warnings
    assert (warning.severity, warning.line) == ("warning", 6)
    assert warning.message == ("a later step reads payload field 'aproved', which expects "
                               "does not declare: a signal without it is let through")
    assert warning.hint == "did you mean 'approved'?"


FAILED = {
    "instance_id": "abc", "status": "failed",
    "checkpoint": {"step_id": "wait", "correlation_id": "approval A"},
    "error": {"kind": "expression", "step_id": "decide",
              "message": "in \"results['wait'].payload.approved\": 'dict object' has no "
                         "attribute 'approved'"},
}


def test_a_failure_on_a_missing_payload_field_gets_the_resume_line() -> None:
    assert missing_field_hint(FAILED) == (
        "The signal that resumed it had no payload field 'approved': send it again with the "
        "field (a retry would fail the same way): procctl resume --correlation-id "
        "'approval A' --data approved=VALUE")
    no_payload = {**FAILED, "error": {**FAILED["error"], "message": (  # type: ignore[dict-item]
        "in \"results['wait']['payload']['by'] == 'x'\": 'None' has no attribute 'by'")}}
    assert missing_payload_field(no_payload) == "by"


def test_other_failures_get_no_resume_line() -> None:
    other_attribute = {**FAILED, "error": {**FAILED["error"], "message": (  # type: ignore[dict-item]
        "in \"order.customer\": 'dict object' has no attribute 'customer'")}}
    assert missing_field_hint(other_attribute) is None
    assert missing_field_hint({**FAILED, "checkpoint": None}) is None
    assert missing_field_hint({**FAILED, "status": "completed"}) is None
    task_error = {**FAILED, "error": {"kind": "task_error", "message": "boom"}}
    assert missing_field_hint(task_error) is None


def test_a_refusal_by_expects_gets_the_line_that_fits() -> None:
    reason = ("payload refused by the checkpoint of instance abc: payload field 'approved' "
              "must be bool, not str \"yes\" (expects approved: bool, count: int, by: str?)")
    assert refusal_hint(reason, "approval-1") == (
        "send a payload that fits, e.g.: procctl resume --correlation-id approval-1 "
        "--data approved=true --data count=1")
    assert refusal_hint("instance abc is completed", "approval-1") is None
    assert refusal_hint(None, "approval-1") is None


def test_a_required_any_field_must_be_there_and_may_be_null() -> None:
    declared = (PayloadField("data", "any"),)
    assert payload_problem(declared, {"data": None}) is None
    assert payload_problem(declared, {"data": [1]}) is None
    assert payload_problem(declared, {}) == (
        "payload field 'data' (any) is missing (expects data: any)")


def test_resume_refuses_a_payload_that_does_not_fit_before_it_sends_it() -> None:
    stored = expects_json(parse_definition(HEAD.replace(
        'kind = "checkpoint"\n', 'kind = "checkpoint"\nexpects = { approved = "bool" }\n',
        1), None).steps[0])

    def target(status: str) -> DeliveryTarget:
        return DeliveryTarget("c1", None, None,
                              Holder("i1", status, 1, False, None, stored), None)

    unfit = decide_resume_target(target("paused"), "now", payload_json='{"by": "ada"}')
    assert not unfit.resumable
    assert unfit.reason == ("payload refused by the checkpoint of instance i1: payload field "
                            "'approved' (bool) is missing (expects approved: bool)")
    assert decide_resume_target(target("paused"), "now",
                                payload_json='{"approved": true}').resumable
    assert decide_resume_target(target("paused"), "now").resumable  # not checked
    assert decide_resume_target(target("failed"), "now", payload_json="null").resumable
