from __future__ import annotations

import pytest

from procctl.agent.definition.model import ParamSpec
from procctl.agent.definition.params import parse_assignments, resolve_params
from procctl.agent.errors import UsageError

SPECS = (
    ParamSpec("count", "int", True),
    ParamSpec("ratio", "float", False, 0.5, True),
    ParamSpec("dry", "bool", False, False, True),
    ParamSpec("tags", "list", False, [], True),
    ParamSpec("name", "str", False),
)


def test_cli_text_is_coerced_to_the_declared_type() -> None:
    params = resolve_params(SPECS, from_cli=parse_assignments(
        ["count=3", "ratio=2", "dry=yes", 'tags=["a", "b"]', "name=x=y"]))
    assert params == {"count": 3, "ratio": 2.0, "dry": True, "tags": ["a", "b"], "name": "x=y"}


def test_defaults_and_optional_params() -> None:
    assert resolve_params(SPECS, from_cli={"count": "1"}) == {
        "count": 1, "ratio": 0.5, "dry": False, "tags": [], "name": None}


def test_cli_overrides_file() -> None:
    params = resolve_params(SPECS, from_file={"count": 1}, from_cli={"count": "2"})
    assert params["count"] == 2


def test_missing_required_param_names_it() -> None:
    with pytest.raises(UsageError, match="needs param 'count'") as info:
        resolve_params(SPECS, process_name="p")
    assert info.value.hint == "pass it with -p count=VALUE"


@pytest.mark.parametrize(("pair", "needle"), [
    ("count=three", "must be int"),
    ("dry=maybe", "must be bool"),
    ("tags={}", "must be list"),
])
def test_wrong_type_from_cli(pair: str, needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        resolve_params(SPECS, from_cli=parse_assignments([pair]))


def test_wrong_type_from_file() -> None:
    with pytest.raises(UsageError, match="must be int"):
        resolve_params(SPECS, from_file={"count": "3"})
    with pytest.raises(UsageError, match="must be int"):
        resolve_params(SPECS, from_file={"count": True})


def test_unknown_param_suggests_the_close_one() -> None:
    with pytest.raises(UsageError) as info:
        resolve_params(SPECS, from_cli={"cuont": "1"})
    assert info.value.hint == "did you mean 'count'?"


def test_bad_assignment_syntax() -> None:
    with pytest.raises(UsageError, match="not name=value"):
        parse_assignments(["count"])
