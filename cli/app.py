"""The procctl command line. The one place where errors become messages and exit codes."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer

from procctl.agent import VERSION
from procctl.agent.errors import AgentError, DefinitionError
from procctl.agent.paths import HOME_ENV, HomePaths
from procctl.cli import render
from procctl.cli.commands import (
    agent,
    config,
    graph,
    listing,
    paused,
    purge,
    resume,
    retry,
    run,
    show,
    signals,
    validate,
)
from procctl.cli.options import GlobalOptions
from procctl.store import StoreError
from procctl.store.errors import NotFound

EXIT_INSTANCE_NOT_FOUND = 5
EXIT_STORE = 6
EXIT_BUG = 70

app = typer.Typer(
    name="procctl",
    help="Run durable processes written in TOML on a local agent.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
app.add_typer(agent.app, name="agent")
app.add_typer(config.app, name="config")
app.command("run")(run.run_command)
app.command("show")(show.show_command)
app.command("list")(listing.list_command)
app.command("validate")(validate.validate_command)
app.command("graph")(graph.graph_command)
app.command("resume")(resume.resume_command)
app.command("retry")(retry.retry_command)
app.command("list-paused")(paused.list_paused_command)
app.command("purge-expired")(purge.purge_expired_command)
app.command("signals")(signals.signals_command)

_debug = False


def _version(value: bool) -> None:
    if value:
        typer.echo(f"procctl {VERSION}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar=HOME_ENV, help="The agent's home directory (database, socket, log).",
        show_default="PROCCTL_HOME or the user state directory")] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    global _debug
    _debug = debug
    ctx.obj = GlobalOptions(HomePaths.resolve(home), debug)


def main() -> None:
    """Entry point: run the app, turn known errors into one line and an exit code."""
    try:
        app()
    except DefinitionError as exc:
        for problem in exc.problems:
            render.problem(problem)
        if _debug:
            traceback.print_exc()
        sys.exit(exc.exit_code)
    except AgentError as exc:
        render.error(exc.message, exc.hint)
        if _debug:
            traceback.print_exc()
        sys.exit(exc.exit_code)
    except StoreError as exc:
        render.error(exc.message, exc.hint)
        if _debug:
            traceback.print_exc()
        sys.exit(EXIT_INSTANCE_NOT_FOUND if isinstance(exc, NotFound) else EXIT_STORE)
    except KeyboardInterrupt:
        render.error("interrupted")
        sys.exit(130)
    except Exception as exc:
        render.error(f"procctl bug: {type(exc).__name__}: {exc}",
                     "please report it with the output of the same command with --debug")
        if _debug:
            traceback.print_exc()
        sys.exit(EXIT_BUG)


if __name__ == "__main__":
    main()
