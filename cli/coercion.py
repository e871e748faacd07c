"""Option and argument values without pydantic, where typer's own coercion would give
the same value.

typer (0.2x) turns every value it parses, defaults included, into its parameter's type
through a pydantic TypeAdapter, built on first use: importing pydantic and building the
adapters takes 100-150 ms, more than the rest of a `procctl list` together. The values
procctl's commands take are mostly plain: a `str` option given a string, an `int` one a
default or a string of digits, a `Path` one a string. For those, `PlainRuntimeParam`
gives what typer's adapter gives (`str(value)`, `int(value)`, `Path(value)` through
typer's own path checks); for any other value it hands over to typer's coercion, built
then (tests/unit/test_cli_coercion.py compares the two over every command's parameters).

This leans on typer's internals (`typer._coercion`, `_TyperParameter.get_runtime_param`),
installed once for the process by the app (`install`): with a typer that has none of
them, `install` changes nothing.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

try:
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_path
    from typer.core import _TyperParameter
except ImportError:  # a typer without pydantic coercion: nothing to replace
    _TYPER_COERCION = False
else:
    _TYPER_COERCION = True

if TYPE_CHECKING:
    from typer._click import Context

#: a decimal integer as Python's int() and pydantic both read it the same way
_PLAIN_INT = re.compile(r"[+-]?[0-9]{1,18}")
#: the value was not a plain one: let typer coerce it
_NOT_PLAIN = object()


def _plain(annotation: Any, value: Any) -> Any:
    """The value typer's adapter would give for a plain `value`, or _NOT_PLAIN."""
    kind = type(value)
    if annotation is str and kind is str:
        return value
    if annotation is int:
        if kind is int:
            return value
        if kind is str and _PLAIN_INT.fullmatch(value):
            return int(value)
    if (annotation is float and kind is float) or (annotation is bool and kind is bool):
        return value
    if annotation == list[str] and kind in (tuple, list) and all(
            type(item) is str for item in value):
        return list(value)
    return _NOT_PLAIN


if _TYPER_COERCION:

    class PlainRuntimeParam(RuntimeParam):
        """Coerces plain values itself (see the module's doc), the rest through
        typer's own coercion. None and multi-value checks stay typer's
        (`RuntimeParam.coerce`). Its fields, __init__ and frozenness are RuntimeParam's
        (a frozen dataclass); no fields of its own, so no @dataclass of its own."""

        def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
            plain = _plain(self.annotation, value)
            if plain is not _NOT_PLAIN:
                return plain
            if self.annotation is Path and type(value) in (str, Path) \
                    and "\x00" not in str(value):
                # what typer's path adapter does with Path(value), pydantic's reading of
                # any string as a Path (a NUL, which no argument can hold, fails inside
                # pydantic there: left to typer)
                return coerce_cli_path(Path(value), self.parameter_info, path_type=Path,
                                       param=param, ctx=ctx)
            full = build_runtime_param(param.type_descriptor)
            return full._coerce_value(value, param=param, ctx=ctx)


def _handles(param: Any) -> bool:
    """Whether `param`'s type is one PlainRuntimeParam knows."""
    descriptor = param.type_descriptor
    info = descriptor.parameter_info
    if descriptor.file_annotation is not None or info.parser is not None:
        return False
    if getattr(info, "click_type", None) is not None:
        return False
    annotation = descriptor.annotation
    if annotation is int:
        return info.min is None and info.max is None
    if annotation is Path:
        return info.path_type is None
    return annotation in (str, bool, float) or annotation == list[str]


def install() -> None:
    """Make typer give every parameter whose type PlainRuntimeParam knows (help options
    included, which click makes when a command first parses) the pydantic-free
    coercion, in this process. Changes nothing the second time, or with a typer that
    has no pydantic coercion."""
    if not _TYPER_COERCION or getattr(_TyperParameter, "_procctl_plain", False):
        return
    typers_own = _TyperParameter.get_runtime_param

    def get_runtime_param(self: _TyperParameter) -> RuntimeParam:
        if self._runtime_param is None and _handles(self):
            descriptor = self.type_descriptor
            self._runtime_param = PlainRuntimeParam(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation)
        return typers_own(self)

    setattr(_TyperParameter, "get_runtime_param", get_runtime_param)  # noqa: B010
    _TyperParameter._procctl_plain = True  # type: ignore[attr-defined]
