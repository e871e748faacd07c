"""The procctl command line. The one place where errors become messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from procctl.agent import VERSION
from procctl.agent.paths import HOME_ENV, HomePaths
from procctl.cli import coercion
from procctl.cli.lazy import LazyCommand, lazy_group
from procctl.cli.options import GlobalOptions

# Start-up imports only what `procctl --help` and `--version` need (typer, and the
# command table below). rich, the store and the agent's errors come in when a command
# runs or an error is reported: tests/e2e/test_cli_startup_imports.py keeps it so, and
# bench/cli_startup.py measures it.

coercion.install()  # typer's value coercion without pydantic, where it gives the same

EXIT_INSTANCE_NOT_FOUND = 5
EXIT_STORE = 6
EXIT_BUG = 70

_COMMANDS = "procctl.cli.commands"

# Every command, in the order `procctl --help` lists them: its name, where it is and the
# first paragraph of its help. A command's module is imported only when that command
# runs (cli/lazy.py): `--help` stays fast, and a module that cannot be imported breaks
# only its own command ("procctl bug:", exit code 70, from main() below).
COMMANDS = (
    LazyCommand("run", f"{_COMMANDS}.run:run_command",
                "Run a process definition on the agent (started in the background if "
                "needed)."),
    LazyCommand("show", f"{_COMMANDS}.show:show_command",
                "Show one instance: status, params, result or error, and its history."),
    LazyCommand("list", f"{_COMMANDS}.listing:list_command",
                "List instances, newest first."),
    LazyCommand("validate", f"{_COMMANDS}.validate:validate_command",
                "Check a definition: TOML syntax, step kinds and fields, ids, expressions, "
                "variables."),
    LazyCommand("graph", f"{_COMMANDS}.graph:graph_command",
                "Draw a definition: its steps as a tree, or a Mermaid flowchart for docs and "
                "pull requests. Checkpoints show their correlation ID, TTL and the variables "
                "they store."),
    LazyCommand("resume", f"{_COMMANDS}.resume:resume_command",
                "Resume a paused instance (or retry a failed one) by its correlation ID."),
    LazyCommand("retry", f"{_COMMANDS}.retry:retry_command",
                "Retry a failed or held instance: from its last checkpoint through the "
                "checkpoint's recover block, or, with no checkpoint, from the beginning "
                "with the same params."),
    LazyCommand("list-paused", f"{_COMMANDS}.paused:list_paused_command",
                "List paused instances, newest first: correlation ID, expiry, next "
                "scheduled resume."),
    LazyCommand("purge-expired", f"{_COMMANDS}.purge:purge_expired_command",
                "Expire paused and failed instances whose checkpoint outlived its TTL."),
    LazyCommand("signals", f"{_COMMANDS}.signals:signals_command",
                "Signals that did not resume anything (yet), and files not read yet."),
    LazyCommand("agent", f"{_COMMANDS}.agent:app",
                "Start, stop and inspect the agent for a home."),
    LazyCommand("agents", f"{_COMMANDS}.agents:agents_command",
                "List the agents sharing this home's store: host, pool, state, lease, "
                "instances."),
    LazyCommand("config", f"{_COMMANDS}.config:app",
                "Read and change the agent's settings."),
)

app = typer.Typer(
    name="procctl",
    help="Run durable processes written in TOML on a local agent.",
    cls=lazy_group(COMMANDS),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)

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
    except KeyboardInterrupt:
        from procctl.cli import render

        render.error("interrupted")
        sys.exit(130)
    except Exception as exc:
        sys.exit(report(exc))


def report(exc: Exception) -> int:
    """Print `exc` for the user (its traceback too with --debug); its exit code.

    The error classes are imported here, when there is an error: an error of theirs
    was raised from a module that imported them already.
    """
    import traceback

    from procctl.agent.errors import AgentError, DefinitionError
    from procctl.cli import render
    from procctl.store.errors import NotFound, StoreError

    if isinstance(exc, DefinitionError):
        for problem in exc.problems:
            render.problem(problem)
        code = exc.exit_code
    elif isinstance(exc, AgentError):
        render.error(exc.message, exc.hint)
        code = exc.exit_code
    elif isinstance(exc, StoreError):
        render.error(exc.message, exc.hint)
        code = EXIT_INSTANCE_NOT_FOUND if isinstance(exc, NotFound) else EXIT_STORE
    else:
        render.error(f"procctl bug: {type(exc).__name__}: {exc}",
                     "please report it with the output of the same command with --debug")
        code = EXIT_BUG
    if _debug:
        traceback.print_exception(exc)
    return code


if __name__ == "__main__":
    main()
