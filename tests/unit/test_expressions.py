"""The sandbox: types kept, names read found statically, data never rendered, work bounded."""

from __future__ import annotations

import math
from typing import Any

import pytest

from procctl.agent import values
from procctl.agent.errors import ExpressionError
from procctl.agent.expressions import (
    compile_condition,
    compile_template,
    render_value,
    variables_read,
)


def test_single_expression_keeps_its_type() -> None:
    assert compile_template("{{ a + 1 }}").evaluate({"a": 2}) == 3
    assert compile_template("{{ [a, a] }}").evaluate({"a": 1}) == [1, 1]
    assert compile_template(" {{ flag }} ").evaluate({"flag": False}) is False


def test_mixed_text_renders_a_string() -> None:
    assert compile_template("n={{ n }}").evaluate({"n": 4}) == "n=4"


def test_literal_text_is_left_alone() -> None:
    assert compile_template("plain").evaluate({}) == "plain"


def test_data_that_looks_like_a_template_is_not_rendered() -> None:
    payload = "{{ 7 * 7 }}"
    assert compile_template("{{ p }}").evaluate({"p": payload}) == payload
    assert compile_template("got {{ p }}").evaluate({"p": payload}) == "got {{ 7 * 7 }}"
    assert render_value({"k": ["{{ p }}"]}, {"p": payload}) == {"k": [payload]}


def test_variables_read_are_found_without_running() -> None:
    assert compile_template("{{ a + b.c }} {{ d | length }}").variables == {"a", "b", "d"}
    assert compile_condition("x > 1 and y").variables == {"x", "y"}
    assert compile_condition('results["fetch"].status == 200').results_read == {"fetch"}
    assert variables_read({"a": "{{ one }}", "b": ["{{ two }}", 3]}) == {"one", "two"}
    loop = compile_template("{% for i in items %}{{ i }}{% endfor %}")
    assert loop.variables == {"items"}


def test_unknown_variable_is_an_error_naming_it() -> None:
    with pytest.raises(ExpressionError, match="'missing' is undefined"):
        compile_template("{{ missing }}").evaluate({})


def test_syntax_error_is_reported_at_compile_time() -> None:
    with pytest.raises(ExpressionError, match="syntax error"):
        compile_condition("a >")


@pytest.mark.parametrize("source", [
    "{{ x.__class__ }}",
    "{{ x.__class__.__mro__ }}",
    "{{ ''.__class__.__subclasses__() }}",
    "{{ lst.append(1) }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 9999999 }}",
    "{{ range(10000000) | list }}",
])
def test_sandbox_refuses_unsafe_or_unbounded_work(source: str) -> None:
    with pytest.raises(ExpressionError):
        compile_template(source).evaluate({"x": 1, "lst": []})


def test_now_and_today_are_available() -> None:
    assert compile_template("{{ now().year >= 2024 }}").evaluate({}) is True
    assert compile_template("{{ today().year }}").evaluate({}) >= 2024


# -- a field that is one expression keeps its type, whatever braces it holds ------------


@pytest.mark.parametrize(("source", "expected"), [
    ("{{ 'inf' | float }}", math.inf),
    ("{{ '-inf' | float }}", -math.inf),
    ("{{ 1e999 }}", math.inf),
    ("{{ -1e999 }}", -math.inf),
    ("{{ {'c': {'d': 1}} }}", {"c": {"d": 1}}),
    ("{{ {'c': {'d': 1}}}}", {"c": {"d": 1}}),
    (" {{ {'c': {'d': [1, {'e': 2}]}} }}\t", {"c": {"d": [1, {"e": 2}]}}),
    ("{{- 7 -}}", 7),
    ("{{ '}}' }}", "}}"),
])
def test_one_expression_keeps_its_type_whatever_it_holds(source: str, expected: Any) -> None:
    assert compile_template(source).kind == "template"
    assert compile_template(source).evaluate({}) == expected


def test_nan_is_a_float_and_survives_typed_json() -> None:
    value = compile_template("{{ 'nan' | float }}").evaluate({})
    assert isinstance(value, float) and math.isnan(value)
    for number in (math.inf, -math.inf):
        assert values.loads(values.dumps({"x": number})) == {"x": number}
    assert math.isnan(values.loads(values.dumps(value)))


@pytest.mark.parametrize("source", [
    "{{ x }}{{ y }}", "{{ x }} and {{ y }}", "{{ x }}\n", "{% if x %}{{ x }}{% endif %}",
    "{% raw %}{{ x }}{% endraw %}",
])
def test_anything_more_than_one_expression_is_text(source: str) -> None:
    assert isinstance(compile_template(source).evaluate({"x": 1, "y": 2}), str)


def test_conditions_with_nested_braces_and_non_finite_constants() -> None:
    assert compile_condition("{{ {'a': {'b': 1}}['a']['b'] == 1 }}").evaluate({}) is True
    assert compile_condition("{'a': {'b': 1}}['a']['b'] == 1").evaluate({}) is True
    assert compile_condition("'inf' | float > 10 ** 300").evaluate({}) is True
    assert compile_condition("{{ x }}").variables == {"x"}
    with pytest.raises(ExpressionError, match="syntax error"):
        compile_condition("{{ a }} and {{ b }}")
