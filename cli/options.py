"""Options every command shares (set by the app callback)."""

from __future__ import annotations

from dataclasses import dataclass

import typer

from procctl.agent.paths import HomePaths


@dataclass
class GlobalOptions:
    home: HomePaths
    debug: bool = False


def global_options(ctx: typer.Context) -> GlobalOptions:
    options = ctx.find_root().obj
    if not isinstance(options, GlobalOptions):  # a command called without the callback
        options = GlobalOptions(HomePaths.resolve(None))
    options.home.check_path()
    return options
