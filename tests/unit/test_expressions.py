"""The sandbox: types kept, names read found statically, data never rendered, work bounded."""

from __future__ import annotations

import math
import resource
import time
from collections.abc import Iterator
from typing import Any

import pytest

from procctl.agent import values
from procctl.agent.errors import ExpressionError
from procctl.agent.expression_limits import Limits, current_limits, set_limits
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


# -- bounded work: time and size ------------------------------------------------------

TIMEOUT = 0.3


@pytest.fixture
def tight_limits() -> Iterator[None]:
    """A short time budget for these tests (the agent's default is longer)."""
    before = current_limits()
    set_limits(Limits(timeout=TIMEOUT, max_size=before.max_size))
    yield
    set_limits(before)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


NESTED_LOOP = ("{% for a in range(10000) %}{% for b in range(10000) %}"
               "{% for c in range(10000) %}x{% endfor %}{% endfor %}{% endfor %}")

TOO_LONG = [
    NESTED_LOOP,
    "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% for a in range(10000) %}{% for b in range(10000) if b < 0 %}{% endfor %}{% endfor %}",
    "{{ range(10000) | map('string') | map('upper') | list | length > 0 and "
    "(range(10000) | map('string') | list) == [] }}{% for a in range(10000) %}"
    "{{ range(1000) | select('odd') | list | length }}{% endfor %}",
]


@pytest.mark.usefixtures("tight_limits")
@pytest.mark.parametrize("source", TOO_LONG)
def test_work_is_bounded_in_time(source: str) -> None:
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=r"not allowed: .*longer than 0\.3 s"):
        compile_template(source).evaluate({})
    assert time.monotonic() - started < TIMEOUT + 0.5


BIG = "{% set big = 'x' * 100000 %}"
TOO_BIG = [
    "{{ '{0:{1}}'.format(1, '>99999999') }}",
    "{{ '{:>99999999}'.format(1) }}",
    "{{ '{:.99999999f}'.format(1.5) }}",
    "{{ '{a:>99999999}'.format_map({'a': 1}) }}",
    "{{ ('{0:>99999999}' | safe).format(1) }}",
    "{{ '%099999999d' % 1 }}",
    "{{ '%*d' % (99999999, 1) }}",
    "{{ '%.99999999f' % 1.5 }}",
    "{{ '%099999999d' | format(1) }}",
    "{{ 'x' | center(99999999) }}",
    "{{ 'x'.ljust(99999999) }}",
    "{{ 'x'.zfill(99999999) }}",
    "{{ 'a\tb'.expandtabs(99999999) }}",
    "{{ ('x' * 1000) | indent(99999999) }}",
    "{{ ('x\\n' * 1000) | indent('y' * 99999) }}",
    "{{ ('ab ' * 1000) | wordwrap(1, wrapstring='z' * 100000) }}",
    "{{ ('x' * 1000).replace('', 'y' * 10000) }}",
    "{{ ('x' * 1000) | replace('x', 'y' * 10000) }}",
    "{{ ('y' * 10000).join(['a'] * 10000) }}",
    "{{ (['a'] * 10000) | join('y' * 10000) }}",
    "{{ ('a' * 1000).translate({97: 'b' * 100000}) }}",
    "{{ [1] | batch(99999999, 0) | list }}",
    "{{ range(10) | slice(99999999) | list }}",
    "{{ lipsum(99999999) }}",
    "{{ [[[[1]]]] | tojson(indent=99999999) }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(s=[1]) %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "{% set ns = namespace(n=10 ** 4000) %}{% for i in range(40) %}"
    "{% set ns.n = ns.n * ns.n %}{% endfor %}{{ ns.n > 0 }}",
    BIG + "{{ [big] * 1000 }}",
    BIG + "{{ ([big] * 10) | string }}",
    BIG + "{% set ns = namespace(d={}) %}{% for i in range(1000) %}"
    "{% set ns.d = dict(ns.d, **{i | string: big[i:]}) %}{% endfor %}{{ ns.d | length }}",
    BIG + "{% set ns = namespace(l=[]) %}{% for i in range(1000) %}"
    "{% set ns.l = ns.l + [big[i:]] %}{% endfor %}{{ ns.l | length }}",
    BIG + "{% for i in range(10000) %}{{ big }}{% endfor %}",
    BIG + "{% set out %}{% for i in range(10000) %}{{ big }}{% endfor %}{% endset %}{{ 1 }}",
    "{% for i in range(10000) %}" + "x" * 1000 + "{% endfor %}",
]


@pytest.mark.usefixtures("tight_limits")
@pytest.mark.parametrize("source", TOO_BIG)
def test_values_and_text_are_bounded_in_size(source: str) -> None:
    before = _peak_rss_mb()
    bound = r"not allowed: .*(1,000,000 characters|10,000 parts|4,300 digits)"
    with pytest.raises(ExpressionError, match=bound):
        compile_template(source).evaluate({})
    assert _peak_rss_mb() - before < 150


def test_ordinary_work_stays_within_the_bounds() -> None:
    total = compile_template("{% for i in range(10000) %}{{ i % 10 }}{% endfor %}")
    assert len(total.evaluate({})) == 10000
    assert compile_template("{{ ('x' * 1000000) | length }}").evaluate({}) == 1000000
    assert compile_template("{{ '{:>5}|{:.2f}'.format('a', 1.5) }}").evaluate({}) == "    a|1.50"
    assert compile_template("{{ '%05d' % 42 }}").evaluate({}) == "00042"
    assert compile_template("{{ 'a,b' | replace(',', ';') | center(5) }}").evaluate({}) == " a;b "
    assert compile_template("{{ ['a', 'b'] | join('-') }}").evaluate({}) == "a-b"
    assert compile_template("{{ 2 ** 100 * 3 }}").evaluate({}) == 3 * 2 ** 100
    loop = "{% for i in items if i > 1 %}{{ i }}{% else %}none{% endfor %}"
    assert compile_template(loop).evaluate({"items": [1, 2, 3]}) == "23"
    assert compile_template(loop).evaluate({"items": [1]}) == "none"
    tree = [{"v": 1, "c": [{"v": 2, "c": []}]}]
    recursive = ("{% for n in tree recursive %}{{ n.v }}{% if n.c %}({{ loop(n.c) }})"
                 "{% endif %}{% endfor %}")
    assert compile_template(recursive).evaluate({"tree": tree}) == "1(2)"
    big = "y" * 5_000_000  # data may be larger than the bound: it is read, not built
    assert compile_template("{{ data }}").evaluate({"data": big}) is big
    assert compile_template("{{ data | length }}").evaluate({"data": big}) == 5_000_000
    assert compile_template("{{ data[:3] }}").evaluate({"data": big}) == "yyy"


DOUBLING = [
    "{% set ns = namespace(l=[1]) %}{% for i in range(60) %}{% set ns.l = [ns.l, ns.l] %}"
    "{% endfor %}{{ ns.l | string | length }}",
    "{% set ns = namespace(l=(1,)) %}{% for i in range(60) %}{% set ns.l = (ns.l, ns.l) %}"
    "{% endfor %}{{ {ns.l: 1} | length }}",
    "{% set ns = namespace(l={}) %}{% for i in range(60) %}"
    "{% set ns.l = {'a': ns.l, 'b': ns.l} %}{% endfor %}{{ ns.l | pprint | length }}",
    "{% set ns = namespace(l=1) %}{% for i in range(60) %}"
    "{% set ns.l = namespace(a=ns.l, b=ns.l) %}{% endfor %}{{ ns.l | string | length }}",
]


@pytest.mark.usefixtures("tight_limits")
@pytest.mark.parametrize("source", DOUBLING)
def test_shared_references_count_as_often_as_their_text_repeats_them(source: str) -> None:
    # Without the count, the text (or a hash, or a comparison) of the value would take
    # 2**60 steps; with it, a bound stops the doubling early.
    started = time.monotonic()
    with pytest.raises(ExpressionError,
                       match=r"not allowed: .*(1,000,000 characters|longer than 0\.3 s)"):
        compile_template(source).evaluate({})
    assert time.monotonic() - started < TIMEOUT + 0.5


def test_what_is_handed_in_is_not_built_again() -> None:
    big = "y" * 3_000_000
    context = {"data": big, "rows": [big], "table": {"read": big}}
    for source in ("{{ data | default('') }}", "{{ rows | first }}", "{{ rows | last }}",
                   "{{ table.get('read') }}", "{{ table['read'] }}"):
        assert compile_template(source).evaluate(context) is big
    assert compile_template("{% for a, b in [[1, 2]] %}{{ a + b }}{% endfor %}").evaluate(
        {}) == "3"
    assert compile_template("{% set a, b = (1, 2) %}{{ (a, b) }}").evaluate({}) == "(1, 2)"
    with pytest.raises(ExpressionError, match=r"upper\(\) would be larger"):
        compile_template("{{ data.upper() }}").evaluate(context)
