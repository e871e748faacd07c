"""procctl's pydantic-free value coercion (cli/coercion.py) gives what typer's own would,
for every parameter of every command, value by value: the same value, or the same error.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

coercion = pytest.importorskip("procctl.cli.coercion")
if not coercion._TYPER_COERCION:
    pytest.skip("this typer has no pydantic coercion to replace", allow_module_level=True)

import typer.main  # noqa: E402
from typer._click import Command, Context  # noqa: E402
from typer._coercion import build_runtime_param  # noqa: E402

from procctl.cli.app import COMMANDS, app  # noqa: E402


def every_command() -> Iterator[tuple[str, Command]]:
    """The root group and every command and subcommand, loaded."""
    def walk(name: str, command: Command) -> Iterator[tuple[str, Command]]:
        yield name, command
        for sub_name, sub in getattr(command, "commands", {}).items():
            if name != "procctl":  # the root's are the lazy stand-ins: loaded below
                yield from walk(f"{name} {sub_name}", sub)

    yield from walk("procctl", typer.main.get_group(app))
    for entry in COMMANDS:
        yield from walk(entry.name, entry.load(rich_markup_mode=None))


def outcome(coerce: Any, value: Any, param: Any, ctx: Context) -> tuple[str, Any]:
    try:
        return "value", coerce(value, param=param, ctx=ctx)
    except Exception as exc:
        message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
        return type(exc).__name__, message


def values(tmp_path: Path) -> list[Any]:
    existing_file, existing_dir = tmp_path / "file.toml", tmp_path / "dir"
    existing_file.write_text("[process]\n", encoding="utf-8")
    existing_dir.mkdir(exist_ok=True)
    return [None, "", " ", "abc", "10", "-3", "+4", "007", " 5", "1_000", "10.0", "1e3",
            "9" * 30, 0, 7, -1, True, False, 2.5, "-", "~/x", str(existing_file),
            str(existing_dir), str(tmp_path / "missing"), existing_file, Path("rel"),
            ("a", "b"), ["c"], (), ("a", 1), b"bytes", "nul\x00byte", Path("nul\x00")]


def test_plain_coercion_gives_what_typer_gives(tmp_path: Path) -> None:
    compared = handled = 0
    for name, command in every_command():
        ctx = Context(command, info_name=name)
        params = [*command.params, command.get_help_option(ctx)]
        for param in params:
            if param is None or not coercion._handles(param):
                continue
            handled += 1
            descriptor = param.type_descriptor
            plain = coercion.PlainRuntimeParam(parameter_info=descriptor.parameter_info,
                                               annotation=descriptor.annotation)
            typers = build_runtime_param(descriptor)
            for value in values(tmp_path):
                ours = outcome(plain.coerce, value, param, ctx)
                theirs = outcome(typers.coerce, value, param, ctx)
                assert ours == theirs, (name, param.name, descriptor.annotation, value)
                compared += 1
    # every command has parameters of the plain kinds (and a help option)
    assert handled >= 2 * (len(COMMANDS) + 1), handled
    assert compared == handled * len(values(tmp_path))


def test_the_app_coerces_without_pydantic_where_it_can() -> None:
    """After the app's import, a plain parameter gets the plain coercion, and one of a
    type it does not know (a bool given a string, from an environment variable, say)
    still works through typer's."""
    import procctl.cli.app  # noqa: F401  (installs the coercion)

    group = typer.main.get_group(app)
    ctx = Context(group, info_name="procctl")
    home, debug = (next(p for p in group.params if p.name == name) for name in ("home", "debug"))
    assert isinstance(home.get_runtime_param(), coercion.PlainRuntimeParam)
    assert home.process_value(ctx, "/tmp/somewhere") == Path("/tmp/somewhere")
    assert debug.process_value(ctx, "yes") is True
