"""Process definitions: TOML -> a frozen, validated model."""

from procctl.agent.definition.loader import load_definition, parse_definition
from procctl.agent.definition.model import Definition, ParamSpec, Step
from procctl.agent.definition.params import parse_assignments, resolve_params

__all__ = [
    "Definition",
    "ParamSpec",
    "Step",
    "load_definition",
    "parse_assignments",
    "parse_definition",
    "resolve_params",
]
