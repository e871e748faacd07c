"""The vocabulary of a definition file: the fields of each step kind, and the small
helpers every builder uses (where a step is, did-you-mean hints)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from difflib import get_close_matches
from typing import Any, TypeGuard, assert_never

from procctl.agent.definition.model import STEP_KINDS, StepKindName

COMMON_FIELDS = {"id", "kind", "name", "description"}


def _fields_of(kind: StepKindName) -> tuple[set[str], tuple[str, ...]]:
    """The fields a step of this kind takes, and those it needs. Exhaustive: mypy
    names a kind left out."""
    match kind:
        case "task":
            return {"task", "with", "timeout", "retry", "retries", "retry_delay"}, ("task",)
        case "set":
            return {"values"}, ("values",)
        case "if":
            return {"condition", "then", "else"}, ("condition", "then")
        case "switch":
            return {"cases", "default"}, ("cases",)
        case "inclusive":
            return {"branches"}, ("branches",)
        case "parallel":
            return {"branches", "max_concurrency"}, ("branches",)
        case "foreach":
            return {"items", "as", "index_as", "body"}, ("items", "body")
        case "while":
            return ({"condition", "max_iterations", "index_as", "body"},
                    ("condition", "max_iterations", "body"))
        case "scope":
            return {"do", "catch", "finally", "error_as"}, ("do",)
        case "call":
            return {"file", "params"}, ("file",)
        case "intermediate_return":
            return {"value"}, ("value",)
        case "return":
            return {"value"}, ()
        case "throw":
            return {"message"}, ("message",)
        case "checkpoint":
            return ({"correlation_id", "ttl", "continue", "commit", "recover", "resume_after",
                     "resume_at", "on_expire", "expects"}, ())
        case "scheduled_resume":
            return {"after", "at", "max_iterations"}, ()
        case "signal":
            return {"correlation_id", "payload", "signal_id"}, ("correlation_id",)
        case _:
            assert_never(kind)


#: kind -> the fields its steps take, in the order of STEP_KINDS (which hints list)
KIND_FIELDS: dict[StepKindName, set[str]] = {kind: _fields_of(kind)[0] for kind in STEP_KINDS}
#: kind -> the fields its steps cannot do without, in the order they are reported
REQUIRED_FIELDS: dict[StepKindName, tuple[str, ...]] = {
    kind: _fields_of(kind)[1] for kind in STEP_KINDS}
REQUIRED_HINTS: dict[tuple[str, str], str] = {
    ("while", "max_iterations"): "it bounds the loop: max_iterations = 100",
    ("while", "condition"): 'e.g. condition = "remaining > 0"',
    ("if", "condition"): 'e.g. condition = "amount > 1000"',
    ("foreach", "items"): 'e.g. items = "{{ orders }}"',
    ("call", "file"): 'the definition to run, e.g. file = "child.toml"',
    ("scope", "do"): "add its steps as [[steps.do]] tables",
    ("intermediate_return", "value"): 'e.g. value = { accepted = true }',
    ("signal", "correlation_id"): 'e.g. correlation_id = "approval-{{ order }}"',
}
PROCESS_FIELDS = {"name", "version", "description", "params", "on_crash", "pool"}
ON_CRASH = ("fail", "restart", "hold")
#: a pool's name (the agents' `pool` setting, a definition's `pool`)
POOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
PARAM_FIELDS = {"type", "default", "required", "description"}
RETRY_FIELDS = {"attempts", "delay", "backoff", "factor", "max_delay", "jitter", "on"}
CASE_FIELDS = {"name", "when", "do"}
BUILTIN_VARIABLES = ("result", "results", "process", "step")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
STEP_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
TOML_POSITION = re.compile(r"\(at line (\d+), column (\d+)\)")

@dataclass(frozen=True)
class Where:
    path: str
    id: str | None
    line: int | None


def what_it_could_set(raw: Any, names: set[str], ids: set[str]) -> None:
    """The variables a step's raw table (and the steps in it) could set, and its ids."""
    if isinstance(raw, list):
        for item in raw:
            what_it_could_set(item, names, ids)
        return
    if not isinstance(raw, dict):
        return
    if isinstance(raw.get("id"), str):
        ids.add(raw["id"])
    names.update(raw[key] for key in ("as", "index_as", "error_as")
                 if isinstance(raw.get(key), str))
    if isinstance(raw.get("values"), dict):
        names.update(raw["values"])
    for value in raw.values():
        if isinstance(value, list | dict):
            what_it_could_set(value, names, ids)


def is_step_kind(kind: object) -> TypeGuard[StepKindName]:
    """Whether a raw `kind` value (any TOML value) names a step kind."""
    return kind in STEP_KINDS  # a tuple: an unhashable value (a list, a table) is just no kind


def table_name(path: str) -> str:
    """The TOML table a step path lives in: steps[2].cases[0].do[1] -> steps.cases.do."""
    return re.sub(r"\[\d+\]", "", path)


def did_you_mean(word: str, options: Any) -> str | None:
    close = get_close_matches(word, [str(o) for o in options], n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None

