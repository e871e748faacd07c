"""Templates of literal text and plain names are evaluated without Jinja
(agent/plain_templates.py): for every template and context below, the value (its type
included) or the error is exactly what the Jinja evaluation gives."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Iterator
from typing import Any

import pytest

from procctl.agent import expression_limits
from procctl.agent.engine.evaluation import evaluate
from procctl.agent.errors import ExpressionError
from procctl.agent.expressions import (
    Expression,
    compile_condition,
    compile_template,
    render_value,
)
from procctl.agent.plain_templates import MISS

CONTEXT: dict[str, Any] = {
    "order": "A-17", "n": 42, "big": 2**70, "ratio": 0.5, "flag": True, "nothing": None,
    "items": [1, "two", None], "when": datetime.date(2026, 12, 1),
    "process": {"instance_id": "abc123", "trigger": {"id": "cli", "kind": "run"},
                "items": "a key named like a dict method"},
    "text": "x\ny{{ not rendered }}", "results": {"fetch": {"status": 200}},
    "empty": {}, "unicode": "Grüße 日本",
}

#: templates the fast path takes when their names are there
PLAIN = [
    "approval-{{ order }}", "{{ order }}", "  {{ n }}\t", "{{ big }}", "{{ ratio }}",
    "{{ flag }}", "{{ nothing }}", "x{{ nothing }}y", "{{ items }}", "[{{ items }}]",
    "{{ when }}", "on {{ when }}", "bench-{{ process.instance_id }}-{{ n }}",
    "{{ process.trigger.id }}", "{{ process.trigger }}", "{{process.trigger.kind}}!",
    "{{ text }}", "<{{ text }}>", "{{ empty }}", "{{ unicode }}-{{ unicode }}",
    "{{ order }}{{ order }}", "{{- order -}} x", "x {{- order }}", "a\n{{ order }}\n",
    "{{ missing }}", "id-{{ missing }}", "{{ process.missing }}", "x{{ order.upper }}",
    "{{ n.real }}", "{{ items.count }}", "{{ process.trigger.id.strip }}",
    "{{ results.fetch.status }}", "{{ now }}", "{{ range }}-x",
    "{{ order }}{% raw %}{{ x }}{% endraw %}",
]

#: templates the fast path leaves to Jinja (filters, calls, dict methods, item reads)
NOT_PLAIN = [
    "{{ order | lower }}", "{{ order ~ 'x' }}", "{{ process['instance_id'] }}",
    "{{ process.items }}", "{{ process.keys }}", "x{{ self }}", "{{ n + 1 }}",
    "{% if flag %}y{% endif %}", "{{ order.upper() }}", "{{ 'lit' }}",
]


def jinja_only(expression: Expression) -> Expression:
    return dataclasses.replace(expression, _plain=None, _parts=None)


def outcome(expression: Expression, context: dict[str, Any]) -> tuple[str, Any]:
    try:
        value = expression.evaluate(context)
    except ExpressionError as exc:
        return ("error", str(exc))
    return ("value", (type(value), value))


@pytest.mark.parametrize("template", PLAIN + NOT_PLAIN)
def test_the_fast_path_gives_what_jinja_gives(template: str) -> None:
    expression = compile_template(template)
    assert expression.plain == (template in PLAIN)
    assert outcome(expression, CONTEXT) == outcome(jinja_only(expression), CONTEXT)


@pytest.mark.parametrize("template", ["approval-{{ order }}", "{{ order }}",
                                      "bench-{{ process.instance_id }}-{{ n }}",
                                      "{{ process.trigger }}", "{{ nothing }}"])
def test_found_names_take_no_jinja(template: str) -> None:
    expression = compile_template(template)
    value = expression.evaluate_plain(CONTEXT)
    assert value is not MISS
    assert value == jinja_only(expression).evaluate(CONTEXT)


def test_a_single_name_keeps_the_value_itself() -> None:
    assert compile_template("{{ process.trigger }}").evaluate(CONTEXT) is \
        CONTEXT["process"]["trigger"]
    assert compile_template("{{ items }}").evaluate(CONTEXT) is CONTEXT["items"]


def test_undefined_names_raise_jinja_s_error() -> None:
    for template in ("{{ missing }}", "id-{{ missing }}", "{{ process.missing }}"):
        expression = compile_template(template)
        assert expression.evaluate_plain(CONTEXT) is MISS
        with pytest.raises(ExpressionError, match=r"undefined|has no attribute 'missing'"):
            expression.evaluate(CONTEXT)


PLAIN_CONDITIONS = [
    "flag", "nothing", "process.trigger.kind", "missing", "{{ n }}", "order == 'A-17'",
    "order == ''", "text != ''", "n > 41", "n < 41", "n >= 42", "ratio <= 0.5",
    "n == 42.0", "flag == true", "nothing == none", "n != nothing",
    "'two' in items", "n in items", "'x' not in text", "order in process",
    "process.trigger.kind == 'run'", "not flag", "not nothing", "not missing",
    "not (n > 3)", "order < n", "n in n", "missing == 1", "1 == missing",
    "order == order", "when == when", "process.missing != 1", "n == -1",
]
JINJA_CONDITIONS = ["process.items", "n > 1 and flag", "1 < n < 50", "n + 1 == 43",
                    "order | length > 2", "n is even", "order.upper() == 'A-17'",
                    "nothing is none", "big > 2 ** 69", "1 == 1"]


@pytest.mark.parametrize("source", PLAIN_CONDITIONS + JINJA_CONDITIONS)
def test_conditions_give_what_jinja_gives(source: str) -> None:
    expression = compile_condition(source)
    assert outcome(expression, CONTEXT) == outcome(jinja_only(expression), CONTEXT)
    assert expression.plain == (source in PLAIN_CONDITIONS)


@pytest.fixture
def small_limit() -> Iterator[None]:
    before = expression_limits.current_limits()
    expression_limits.set_limits(dataclasses.replace(before, max_size=100))
    yield
    expression_limits.set_limits(before)


@pytest.mark.usefixtures("small_limit")
def test_the_size_bound_is_counted_as_jinja_counts_it() -> None:
    context = {"long": "x" * 60, "nested": {"k": ["y" * 30] * 3}, "n": 7}
    for template in ("{{ long }}{{ long }}", "{{ long }}-{{ n }}", "{{ nested }}",
                     "a{{ nested.k }}", "{{ long }}" + "z" * 45, "{{ long }}" + "z" * 40):
        expression = compile_template(template)
        assert outcome(expression, context) == outcome(jinja_only(expression), context)
    # the texts of one field share one count (a lone {{ name }} makes no text)
    with pytest.raises(ExpressionError, match="larger than 100"):
        render_value({"a": "{{ long }}!", "b": "{{ long }}!"}, context)
    assert render_value({"a": "{{ long }}", "b": "{{ long }}!", "c": "{{ n }}!"},
                        context) == {"a": "x" * 60, "b": "x" * 60 + "!", "c": "7!"}


def test_the_engine_s_evaluate_takes_the_fast_path_and_falls_back() -> None:
    async def run() -> tuple[Any, Any, str]:
        plain = await evaluate(compile_template("c-{{ order }}"), CONTEXT)
        typed = await evaluate(compile_template("{{ n }}"), CONTEXT)
        try:
            await evaluate(compile_template("c-{{ missing }}"), CONTEXT)
        except ExpressionError as exc:
            return plain, typed, str(exc)
        raise AssertionError("an undefined name must fail")
    plain, typed, error = asyncio.run(run())
    assert (plain, typed) == ("c-A-17", 42)
    assert "'missing' is undefined" in error
