"""`procctl config show|set`: the agent's settings in `<home>/config.toml`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from procctl.agent.config import SETTINGS, load_config, set_config_value
from procctl.cli import render
from procctl.cli.options import global_options

app = typer.Typer(help="Read and change the agent's settings.", no_args_is_help=True)


@app.command("show")
def show(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Every setting with its value, default and meaning."""
    options = global_options(ctx)
    current = load_config(options.home.config)
    if as_json:
        render.print_json(current)
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("SETTING", "VALUE", "DEFAULT", "MEANING"):
        table.add_column(column, overflow="fold")
    for setting in SETTINGS:
        value = current[setting.key]
        shown = (render.safe_text(value) if value == setting.default
                 else f"[bold]{render.safe_text(value)}[/]")
        table.add_row(setting.key, shown, escape(str(setting.default)),
                      escape(setting.description))
    render.console.print(table)
    render.note(f"File: {options.home.config}. A running agent reads it at its next start.")
    overridden = _store_url_override()
    if overridden is not None:
        render.note(f"PROCCTL_STORE_URL is set and overrides store_url: the store is "
                    f"{overridden}.")


def _store_url_override() -> str | None:
    """The environment's store location (redacted), when it overrides the setting."""
    import os

    from procctl.agent.store_location import STORE_URL_ENV
    from procctl.store.urls import redacted

    value = os.environ.get(STORE_URL_ENV, "")
    return redacted(value) if value.strip() else None


@app.command("set")
def set_value(
    ctx: typer.Context,
    key: Annotated[str, typer.Argument(help="The setting's name.")],
    value: Annotated[str, typer.Argument(help="The new value.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Change one setting (checked before it is written). A mistyped name is refused
    with the setting it is closest to."""
    options = global_options(ctx)
    options.home.ensure()
    stored = set_config_value(options.home.config, key, value)
    if as_json:
        render.print_json({"key": key, "value": stored, "file": str(options.home.config)})
    else:
        render.console.print(f"{key} = {render.safe_text(repr(stored))}")
    render.note("A running agent uses it after: procctl agent stop && procctl agent start")
