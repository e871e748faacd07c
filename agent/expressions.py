"""Sandboxed expressions: `{{ ... }}` templates in string fields, bare conditions.

They run in `agent/sandbox.py`'s environment, bounded in time and size (see
`agent/expression_limits.py`). Only text from a definition is ever compiled; values
(params, task output, signal payloads) are passed in as data and never rendered again.

A string that is exactly one `{{ expression }}` (spaces or tabs around it allowed)
keeps the value's type. Jinja's parser decides that (the template's body is one output
holding one expression, and nothing else but spaces), and the value comes from running
that expression node itself, never from reading back rendered text.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

from jinja2 import TemplateSyntaxError, Undefined, meta, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.parser import Parser

from procctl.agent.errors import ExpressionError
from procctl.agent.expression_limits import SliceExpired, budget
from procctl.agent.plain_templates import (
    MISS,
    Parts,
    PlainExpression,
    plain_expression,
    plain_parts,
    render_plain,
)
from procctl.agent.sandbox import Sandbox

#: Names every expression can read without a step setting them.
BUILTIN_NAMES = frozenset({"result", "results", "process", "step", "now", "today"})


def _now() -> datetime:
    return datetime.now(UTC)


def _today() -> date:
    return datetime.now(UTC).date()


_ENV = Sandbox()
_ENV.globals["now"] = _now
_ENV.globals["today"] = _today


def has_template(text: str) -> bool:
    return "{{" in text or "{%" in text


@dataclass(frozen=True)
class Expression:
    """A compiled template or condition, and what it reads.

    `variables` are the names it reads; `results_read` the step ids it reads through
    `results["id"]` with a constant key.
    """

    source: str
    kind: str  # "template" | "condition" | "literal"
    variables: frozenset[str] = field(default_factory=frozenset)
    results_read: frozenset[str] = field(default_factory=frozenset)
    results_dynamic: bool = False
    _compiled: Any = field(default=None, compare=False, repr=False)
    #: a "template" or "condition" of one plain name or comparison (`{{ order }}`,
    #: `process.name`, `blob == ''`): agent/plain_templates.py
    _plain: PlainExpression | None = field(default=None, compare=False, repr=False)
    #: a "text" of literal text and plain names (agent/plain_templates.py)
    _parts: Parts | None = field(default=None, compare=False, repr=False)

    @property
    def plain(self) -> bool:
        """Evaluated without Jinja when its names are found (agent/plain_templates.py)."""
        return self._plain is not None or self._parts is not None

    def evaluate_plain(self, context: Mapping[str, Any]) -> Any:
        """The value without Jinja, or MISS (then `evaluate` gives the value or the error
        a Jinja evaluation gives)."""
        try:
            if self._plain is not None:
                return self._plain(context)
            if self._parts is not None:
                with budget() as active:
                    return render_plain(self._parts, context, active)
        except (SecurityError, SliceExpired):  # past the deadline: Jinja says so
            pass
        return MISS

    def evaluate(self, context: Mapping[str, Any]) -> Any:
        """The value, within the evaluation's budget (the field's, when one is open)."""
        if self.kind == "literal":
            return self.source
        if self._plain is not None or self._parts is not None:
            value = self.evaluate_plain(context)
            if value is not MISS:
                return value
        try:
            with budget():
                if self.kind == "text":
                    value = str(self._compiled.render(dict(context)))
                else:
                    value = self._compiled(dict(context))
            if isinstance(value, Undefined):
                str(value)  # a StrictUndefined raises, naming what it lacked
        except SliceExpired:
            raise
        except UndefinedError as exc:
            raise ExpressionError(f"in {self.source!r}: {exc}") from exc
        except SecurityError as exc:
            raise ExpressionError(f"in {self.source!r}: not allowed: {exc}") from exc
        except Exception as exc:  # any error inside the user's expression
            raise ExpressionError(f"in {self.source!r}: {type(exc).__name__}: {exc}") from exc
        return value


def _names_read(tree: nodes.Template) -> tuple[frozenset[str], frozenset[str], bool]:
    """Variables read, step ids read as results["id"], and whether `results` is also
    read some other way (a computed key, or the whole dict)."""
    variables = frozenset(meta.find_undeclared_variables(tree))
    results: set[str] = set()
    constant_reads = 0
    for node in tree.find_all(nodes.Getitem):
        target = node.node
        if (isinstance(target, nodes.Name) and target.name == "results"
                and isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str)):
            results.add(node.arg.value)
            constant_reads += 1
    all_reads = sum(1 for n in tree.find_all(nodes.Name) if n.name == "results")
    return variables, frozenset(results), all_reads > constant_reads


def _single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is one `{{ expression }}` and nothing else
    but spaces or tabs; None for any other template."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    found = [node for node in tree.body[0].nodes
             if not (isinstance(node, nodes.TemplateData) and not node.data.strip(" \t"))]
    if len(found) != 1 or isinstance(found[0], nodes.TemplateData):
        return None
    return found[0]


def _parse_expression(source: str) -> nodes.Expr:
    """A bare expression, parsed as Jinja parses what is between `{{` and `}}`."""
    parser = Parser(_ENV, source, state="variable")
    expression = parser.parse_expression()
    if not parser.stream.eos:
        parser.fail(f"unexpected {parser.stream.current.type!r} after the expression")
    return expression


def _template_of(expression: nodes.Expr) -> nodes.Template:
    """`{{ expression }}` as a tree, for what it reads."""
    tree = nodes.Template([nodes.Output([expression], lineno=1)], lineno=1)
    tree.set_environment(_ENV)
    return tree


def _compile_expression(expression: nodes.Expr) -> TemplateExpression:
    """A callable that runs one expression node and returns its value, typed."""
    tree = nodes.Template(
        [nodes.Assign(nodes.Name("result", "store"), expression, lineno=1)], lineno=1)
    tree.set_environment(_ENV)
    return TemplateExpression(_ENV.from_string(tree), undefined_to_none=False)


def _syntax_error(source: str, exc: TemplateSyntaxError) -> ExpressionError:
    message = str(exc.message).replace("end of print statement", "end of expression")
    return ExpressionError(f"syntax error in {source!r}: {message}")


@lru_cache(maxsize=4096)
def compile_template(text: str) -> Expression:
    """A string field: literal text, one `{{ expr }}` (keeps the value's type), or text."""
    if not has_template(text):
        return Expression(text, "literal")
    try:
        tree = _ENV.parse(text)
        variables, results, dynamic = _names_read(tree)
        single = _single_expression(tree)
        if single is not None:
            return Expression(text, "template", variables, results, dynamic,
                              _compile_expression(single), _plain=plain_expression(single))
        return Expression(text, "text", variables, results, dynamic, _ENV.from_string(tree),
                          _parts=plain_parts(tree))
    except TemplateSyntaxError as exc:
        raise _syntax_error(text, exc) from exc


@lru_cache(maxsize=4096)
def compile_condition(source: str) -> Expression:
    """A bare expression (as in `if`'s `condition`); `{{ }}` around it is accepted too."""
    try:
        single = None
        if source.lstrip(" \t").startswith("{{"):
            single = _single_expression(_ENV.parse(source))
        expression = single if single is not None else _parse_expression(source)
        variables, results, dynamic = _names_read(_template_of(expression))
        compiled = _compile_expression(expression)
    except TemplateSyntaxError as exc:
        raise _syntax_error(source, exc) from exc
    return Expression(source, "condition", variables, results, dynamic, compiled,
                      _plain=plain_expression(expression))


def iter_templates(value: Any) -> Iterator[str]:
    """Every string inside a field value (strings, lists and tables nest)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from iter_templates(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_templates(item)


def render_value(value: Any, context: Mapping[str, Any]) -> Any:
    """Evaluate every template string inside a field value; other values pass as they
    are. The strings of one field share one budget of time."""
    with budget():
        return _render(value, context)


def _render(value: Any, context: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        return compile_template(value).evaluate(context)
    if isinstance(value, list):
        return [_render(item, context) for item in value]
    if isinstance(value, dict):
        return {key: _render(item, context) for key, item in value.items()}
    return value


def variables_read(value: Any) -> frozenset[str]:
    """Names read by every template inside a field value."""
    names: set[str] = set()
    for text in iter_templates(value):
        names |= compile_template(text).variables
    return frozenset(names)
