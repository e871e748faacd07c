"""The payload fields later steps read, found statically (for checkpoints without
`expects`), and whether a payload fits a declaration (the check at the door)."""

from __future__ import annotations

from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import PayloadField
from procctl.agent.definition.payload_fields import (
    expects_from_json,
    expects_json,
    parse_expects,
    payload_fields_read,
    payload_problem,
)

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
