"""What a paused checkpoint's signal must carry: the fields its `expects` declares, or
(without one) the payload fields later steps read, found statically as liveness is;
and whether a payload fits a declaration (the check at the door, agent/decisions.py).

A read of a payload field is `results['wait'].payload.approved` (or `results.wait`,
`['payload']['approved']`, `.payload.get('approved')`), and `result.payload.approved`
in the step right after the checkpoint. `.get(...)` or `| default(...)` on it makes
the field optional.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from difflib import get_close_matches
from typing import Any

from jinja2 import Environment, nodes
from jinja2.exceptions import TemplateSyntaxError

from procctl.agent.definition.model import (
    AnyStep,
    CheckpointStep,
    Definition,
    PayloadField,
)
from procctl.agent.definition.params import PARAM_TYPES, type_matches
from procctl.agent.expressions import Expression

#: parses expression sources only (never renders): their syntax was checked at load
_PARSER = Environment()


def parse_expects(raw: Any) -> tuple[tuple[PayloadField, ...], list[tuple[str, str]]]:
    """`expects = { approved = "bool", note = "str?" }` as fields, and the problems
    found: (message, hint) pairs."""
    if not isinstance(raw, dict):
        return (), [("expects must be a table of field = \"type\"",
                     'e.g. expects = { approved = "bool", by = "str", note = "str?" }')]
    fields: list[PayloadField] = []
    problems: list[tuple[str, str]] = []
    for name, kind in raw.items():
        text = kind if isinstance(kind, str) else ""
        optional = text.endswith("?")
        base = text[:-1] if optional else text
        if base not in PARAM_TYPES:
            shown = json.dumps(kind) if not isinstance(kind, str) else repr(kind)
            close = get_close_matches(base, PARAM_TYPES, n=1)
            guess = f"did you mean {close[0] + '?' * optional!r}? " if close else ""
            problems.append((f"expects: field {name!r} has unknown type {shown}",
                             f"{guess}use one of {', '.join(PARAM_TYPES)}, with ? for an "
                             'optional field (e.g. "str?")'))
            continue
        fields.append(PayloadField(name, base, optional, declared=True))
    return tuple(fields), problems


def expects_json(step: object) -> str | None:
    """A checkpoint's `expects` as stored with its checkpoint row (None: undeclared)."""
    if not isinstance(step, CheckpointStep) or step.expects is None:
        return None
    return json.dumps([[f.name, f.type, f.optional] for f in step.expects])


def expects_from_json(text: str | None) -> tuple[PayloadField, ...] | None:
    if not text:
        return None
    return tuple(PayloadField(str(name), str(kind), bool(optional))
                 for name, kind, optional in json.loads(text))


def describe(fields: Iterable[PayloadField]) -> str:
    """`approved: bool, by: str, note: str?`"""
    return ", ".join(f"{f.name}: {f.type}{'?' if f.optional else ''}" for f in fields)


def payload_problem(fields: tuple[PayloadField, ...], payload: Any) -> str | None:
    """Why `payload` does not fit the declared fields (None: it fits). Fields it
    does not declare are let through; an optional field may be missing or null, a
    required `any` one null."""
    wanted = f"(expects {describe(fields)})"
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return f"the payload must be a table of fields, not {_kind(payload)} {wanted}"
    for field in fields:
        if field.name not in payload or payload[field.name] is None:
            if field.optional or (field.name in payload and field.type == "any"):
                continue
            if field.name in payload:
                return f"payload field {field.name!r} is null, not {field.type} {wanted}"
            return f"payload field {field.name!r} ({field.type}) is missing {wanted}"
        value = payload[field.name]
        if not type_matches(field.type, value):
            return (f"payload field {field.name!r} must be {field.type}, not "
                    f"{_kind(value)} {_shown(value)} {wanted}")
    return None


def _kind(value: Any) -> str:
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list",
             dict: "dict"}
    return names.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# -- fields found statically -------------------------------------------------------------


def payload_fields_read(definition: Definition, step_id: str) -> list[PayloadField]:
    """The payload fields of checkpoint `step_id` that some step reads, in the order
    first read; a field read both with and without a default is required."""
    found: dict[str, bool] = {}  # name -> optional
    for expression in _expressions(definition.all_steps()):
        for name, optional in _reads_of(expression, "results", step_id):
            found[name] = found.get(name, True) and optional
    for expression in _next_step_expressions(definition.steps, step_id):
        for name, optional in _reads_of(expression, "result", step_id):
            found[name] = found.get(name, True) and optional
    return [PayloadField(name, "any", optional, declared=False)
            for name, optional in found.items()]


def _expressions(steps: Iterable[AnyStep]) -> Iterator[Expression]:
    for step in steps:
        yield from step.expressions()


def _next_step_expressions(block: tuple[AnyStep, ...], step_id: str) -> list[Expression]:
    """The expressions of the step right after checkpoint `step_id` in its block
    (where `result` is that checkpoint's result)."""
    for inner in _blocks(block):
        for index, candidate in enumerate(inner[:-1]):
            if candidate.id == step_id:
                return list(inner[index + 1].expressions())
    return []


def _blocks(block: tuple[AnyStep, ...]) -> Iterator[tuple[AnyStep, ...]]:
    yield block
    for step in block:
        for _, inner in step.blocks():
            yield from _blocks(inner)


def _tree(expression: Expression) -> nodes.Template | None:
    source = expression.source
    if expression.kind == "literal":
        return None
    if expression.kind == "condition" and not source.lstrip(" \t").startswith("{{"):
        source = "{{ " + source + " }}"
    try:
        return _PARSER.parse(source)
    except TemplateSyntaxError:
        return None


def _reads_of(expression: Expression, root: str, step_id: str) -> list[tuple[str, bool]]:
    """(field, optional) for each payload field of `step_id` the expression reads;
    root "results" reads `results[step_id]`, root "result" reads `result`."""
    tree = _tree(expression)
    if tree is None:
        return []
    optional_nodes: set[int] = set()
    for applied in tree.find_all(nodes.Filter):
        if applied.name in ("default", "d") and applied.node is not None:
            optional_nodes.add(id(applied.node))
    found: list[tuple[str, bool]] = []
    for node in tree.find_all((nodes.Getattr, nodes.Getitem, nodes.Call)):
        if isinstance(node, nodes.Call):
            target = node.node
            if (isinstance(target, nodes.Getattr) and target.attr == "get"
                    and _is_payload(target.node, root, step_id) and node.args
                    and isinstance(node.args[0], nodes.Const)
                    and isinstance(node.args[0].value, str)):
                found.append((node.args[0].value, True))
            continue
        assert isinstance(node, nodes.Getattr | nodes.Getitem)
        name = _key(node)
        if name is None or not _is_payload(node.node, root, step_id):
            continue
        if name == "get" and isinstance(node, nodes.Getattr):
            continue  # .get('x'): the Call above
        found.append((name, id(node) in optional_nodes))
    return found


def _key(node: nodes.Getattr | nodes.Getitem) -> str | None:
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


def _is_payload(node: nodes.Node, root: str, step_id: str) -> bool:
    """Whether `node` is the checkpoint's payload: `<result of step_id>.payload`."""
    if not isinstance(node, nodes.Getattr | nodes.Getitem) or _key(node) != "payload":
        return False
    base = node.node
    if root == "result":
        return isinstance(base, nodes.Name) and base.name == "result"
    return (isinstance(base, nodes.Getattr | nodes.Getitem) and _key(base) == step_id
            and isinstance(base.node, nodes.Name) and base.node.name == "results")
