"""Templates that are only text and plain names, and conditions that compare one,
evaluated without Jinja.

`"approval-{{ order }}"`, `"{{ order }}"` or `"bench-{{ process.instance_id }}-{{ i }}"`
(a correlation ID, most often) are found when the template is compiled: its parsed body
is one output of literal text and names, where a name may be followed by `.key` reads.
Evaluating one is then a dictionary lookup per name and a join, where a Jinja render
builds a context, runs generated code and calls the sandbox for every read.

It gives exactly what the Jinja render gives, or nothing (MISS), and then the caller
renders with Jinja, which gives the value or the error it always gave:

- a name is looked up in the evaluation's context; one that is not there (undefined,
  or one of the environment's globals such as `now`) is a MISS;
- `.key` is read only from a plain `dict` (exactly that type) that holds the key, and
  when `key` is not an attribute of dict: that is the case where the sandbox's
  `getattr` finds no attribute and returns `value[key]`; anything else is a MISS;
- a template of one `{{ name }}` (spaces or tabs around it) gives the value itself,
  as the compiled expression does; text gives `str()` of each value joined with the
  literal text, as the render does, with its size counted as the render counts it
  (the sandbox's `count_output`); past the evaluation's bound it is a MISS, so that
  Jinja raises the size error;
- a condition (or `{{ }}` field) may also be `not X` or one comparison (`==`, `!=`,
  `<`, `>`, `<=`, `>=`, `in`, `not in`) of a name and a constant or another name,
  which Jinja compiles to that very Python operation (the sandbox does not intercept
  comparisons); one that raises is a MISS, and Jinja raises it again, as its error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Any, Final

from jinja2 import nodes

from procctl.agent.expression_limits import Budget, size_of, tick

#: a path: a name and the keys read from it, e.g. ("process", "instance_id")
NamePath = tuple[str, ...]
#: a template's pieces, in order: literal text, or a path to look up
Parts = tuple[str | NamePath, ...]


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


MISS: Final = _Miss()

#: names Jinja resolves itself, not from the context
_SPECIAL_NAMES = frozenset({"self", "loop", "caller", "varargs", "kwargs", "super"})


def _path(node: nodes.Node) -> NamePath | None:
    keys: list[str] = []
    while isinstance(node, nodes.Getattr):
        if hasattr(dict, node.attr):
            return None
        keys.append(node.attr)
        node = node.node
    if not isinstance(node, nodes.Name) or node.ctx != "load" or node.name in _SPECIAL_NAMES:
        return None
    return (node.name, *reversed(keys))


def plain_parts(tree: nodes.Template) -> Parts | None:
    """The pieces of a parsed template that is only text and plain names, else None."""
    if len(tree.body) != 1 or not isinstance(tree.body[0], nodes.Output):
        return None
    parts: list[str | NamePath] = []
    for node in tree.body[0].nodes:
        if isinstance(node, nodes.TemplateData):
            parts.append(node.data)
            continue
        path = _path(node)
        if path is None:
            return None
        parts.append(path)
    return tuple(parts)


#: an expression evaluated without Jinja: (context) -> its value, or MISS
PlainExpression = Callable[[Mapping[str, Any]], Any]

_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "lt": operator.lt, "gt": operator.gt,
    "lteq": operator.le, "gteq": operator.ge,
    "in": lambda left, right: left in right, "notin": lambda left, right: left not in right,
}
_CONSTANTS = (str, int, float, bool, type(None))


def plain_expression(expression: nodes.Expr) -> PlainExpression | None:
    """An expression that is a name (with `.key` reads), `not` of a plain expression,
    or one comparison of a name with a constant or a name; else None."""
    path = _path(expression)
    if path is not None:
        return lambda context: look_up(path, context)
    if isinstance(expression, nodes.Not):
        inner = plain_expression(expression.node)
        if inner is None:
            return None
        return lambda context: _negated(inner(context))
    if isinstance(expression, nodes.Compare) and len(expression.ops) == 1:
        compare = _COMPARISONS.get(expression.ops[0].op)
        left, right = _operand(expression.expr), _operand(expression.ops[0].expr)
        if compare is None or left is None or right is None or not (
                isinstance(left, tuple) or isinstance(right, tuple)):
            return None
        return lambda context: _compared(compare, left, right, context)
    return None


def _operand(node: nodes.Expr) -> NamePath | nodes.Const | None:
    if isinstance(node, nodes.Const) and type(node.value) in _CONSTANTS:
        return node
    return _path(node)


def _value(operand: NamePath | nodes.Const, context: Mapping[str, Any]) -> Any:
    return operand.value if isinstance(operand, nodes.Const) else look_up(operand, context)


def _negated(value: Any) -> Any:
    return value if value is MISS else not value


def _compared(compare: Callable[[Any, Any], Any], left: NamePath | nodes.Const,
              right: NamePath | nodes.Const, context: Mapping[str, Any]) -> Any:
    first, second = _value(left, context), _value(right, context)
    if first is MISS or second is MISS:
        return MISS
    try:
        return compare(first, second)
    except Exception:  # a comparison Python refuses: Jinja raises it as the error
        return MISS


def look_up(path: NamePath, context: Mapping[str, Any]) -> Any:
    """The value at `path` in the context, or MISS."""
    name = path[0]
    if name not in context:
        return MISS
    value = context[name]
    for key in path[1:]:
        tick()  # as the sandbox's getattr does: an evaluation past its deadline stops
        if type(value) is not dict or key not in value:
            return MISS
        value = value[key]
    return value


def render_plain(parts: Parts, context: Mapping[str, Any], active: Budget) -> Any:
    """The text a template of these pieces renders to, or MISS. Its size is counted in
    the evaluation's budget (`active`, shared by the templates of one field) as the
    render counts it; a MISS counts nothing, for Jinja to count."""
    pieces: list[str] = []
    room = active.max_size - active.output
    size = 0
    for part in parts:
        if isinstance(part, str):
            size += len(part)
            pieces.append(part)
            continue
        value = look_up(part, context)
        if value is MISS:
            return MISS
        size += size_of(value, room - size)
        if size > room:
            return MISS
        pieces.append(str(value))
    if size > room:
        return MISS
    active.output += size
    return "".join(pieces)
