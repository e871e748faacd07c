"""Templates that are only text and plain names, evaluated without Jinja.

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
  Jinja raises the size error.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def plain_path(expression: nodes.Expr) -> NamePath | None:
    """The path of an expression that is only a name and `.key` reads, else None."""
    return _path(expression)


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
