"""Params: declared in `[process.params]`, supplied by `-p k=v` or a JSON file, checked."""

from __future__ import annotations

import json
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any

from procctl.agent.definition.model import ParamSpec
from procctl.agent.errors import UsageError

PARAM_TYPES = ("str", "int", "float", "bool", "list", "dict", "any")
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def type_matches(kind: str, value: Any) -> bool:
    if kind == "any":
        return True
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"str": str, "list": list, "dict": dict}[kind]
    return isinstance(value, expected)


def coerce_text(spec: ParamSpec, text: str) -> Any:
    """A `-p name=text` value as the declared type."""
    kind = spec.type
    try:
        if kind == "str":
            return text
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
            raise ValueError
        if kind in ("list", "dict"):
            value = json.loads(text)
            if not type_matches(kind, value):
                raise ValueError
            return value
        # any: JSON if it parses, else the text itself
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            return text
    except (ValueError, json.JSONDecodeError):
        example = {"int": "3", "float": "2.5", "bool": "true", "list": "'[1, 2]'",
                   "dict": "'{\"a\": 1}'"}.get(kind, "text")
        raise UsageError(
            f"param {spec.name!r} must be {kind}, got {text!r}",
            hint=f"for example -p {spec.name}={example}",
        ) from None


def parse_assignments(pairs: list[str]) -> dict[str, str]:
    """`["a=1", "b=x=y"]` -> {"a": "1", "b": "x=y"}."""
    found: dict[str, str] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.strip():
            raise UsageError(f"-p {pair!r} is not name=value", hint="write -p count=3")
        found[name.strip()] = text
    return found


def resolve_params(
    specs: tuple[ParamSpec, ...],
    *,
    from_file: Mapping[str, Any] | None = None,
    from_cli: Mapping[str, str] | None = None,
    process_name: str = "",
) -> dict[str, Any]:
    """Checked params: file values, then -p values on top, then defaults for the rest."""
    by_name = {spec.name: spec for spec in specs}
    values: dict[str, Any] = {}
    for source, supplied in (("params file", from_file or {}), ("-p", from_cli or {})):
        for name, value in supplied.items():
            spec = by_name.get(name)
            if spec is None:
                close = get_close_matches(name, list(by_name), n=1)
                declared = ", ".join(by_name) or "none"
                raise UsageError(
                    f"process {process_name!r} has no param {name!r} (from {source})",
                    hint=f"did you mean {close[0]!r}?" if close else f"declared params: {declared}",
                )
            if source == "-p":
                value = coerce_text(spec, value)
            elif not type_matches(spec.type, value):
                raise UsageError(
                    f"param {name!r} must be {spec.type}, got {type(value).__name__} "
                    f"{json.dumps(value)} (from the params file)"
                )
            values[name] = value
    for spec in specs:
        if spec.name in values:
            continue
        if spec.has_default:
            values[spec.name] = spec.default
        elif spec.required:
            raise UsageError(
                f"process {process_name!r} needs param {spec.name!r} ({spec.type})",
                hint=f"pass it with -p {spec.name}=VALUE",
            )
        else:
            values[spec.name] = None
    return values
