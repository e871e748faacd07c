"""The procctl command line. The one place where errors become messages and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from procctl.agent.paths import HOME_ENV, HomePaths
from procctl.cli import coercion, options
from procctl.cli.lazy import LazyCommand, lazy_group
from procctl.cli.options import GlobalOptions

try:  # the click that typer 0.29 carries; earlier typers use click itself
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import (  # type: ignore[no-redef,import-not-found]
        ClickException,
        NoArgsIsHelpError,
        UsageError,
    )

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
                "Show one instance: status, params, result or error, how to resume it, its "
                "history."),
    LazyCommand("explain", f"{_COMMANDS}.explain:explain_command",
                "Explain why an instance is where it is: what it waits for, since and until "
                "when, what a signal must carry, the signals it did not take, and the "
                "commands that move it on."),
    LazyCommand("list", f"{_COMMANDS}.listing:list_command",
                "List instances, newest first: status, start, duration, parent, why it "
                "failed."),
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
    LazyCommand("cancel", f"{_COMMANDS}.cancel:cancel_command",
                "Cancel a running or paused instance: it stops at once (the finally blocks "
                "of its scopes run), its checkpoint is discarded, and it ends cancelled."),
    LazyCommand("follow", f"{_COMMANDS}.follow:follow_command",
                "Follow an instance: print its steps from where it is until it pauses or "
                "ends."),
    LazyCommand("wait", f"{_COMMANDS}.wait:wait_command",
                "Wait until an instance pauses or ends; the exit code says how it stands."),
    LazyCommand("list-paused", f"{_COMMANDS}.paused:list_paused_command",
                "List paused instances, newest first: correlation ID, expiry, next "
                "scheduled resume."),
    LazyCommand("purge", f"{_COMMANDS}.purge_finished:purge_command",
                "Remove finished instances that ended long ago, with their history."),
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
    LazyCommand("ui", f"{_COMMANDS}.ui:ui_command",
                "Serve a local web view of the home: instances, paused ones with their "
                "graphs and resume forms, signals and definitions, in the browser."),
)

app = typer.Typer(
    name="procctl",
    help="Run durable processes written in TOML on a local agent.",
    cls=lazy_group(COMMANDS),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,  # typer's own --install-completion and --show-completion
    rich_markup_mode=None,
)


@app.callback()
def _root(
    ctx: typer.Context,
    home: Annotated[Path | None, typer.Option(
        "--home", envvar=HOME_ENV, help=options.HOME_HELP,
        show_default=options.HOME_DEFAULT)] = None,
    debug: Annotated[bool, typer.Option("--debug", help=options.DEBUG_HELP)] = False,
    version: Annotated[bool, typer.Option("--version", callback=options.print_version,
                                          is_eager=True, help=options.VERSION_HELP)] = False,
) -> None:
    # Each command takes --home and --debug too, after its name (cli/options.py).
    options.set_debug(debug)
    ctx.obj = GlobalOptions(HomePaths.resolve(home), debug)


def main() -> None:
    """Entry point: run the app, turn known errors into one line and an exit code.

    typer runs the app without its standalone mode, so that a usage error (an unknown
    option, a missing argument, a bad value) comes here and is printed as every other
    error is: one `Error:` line and a `Hint:`, not click's usage block."""
    try:
        code = app(standalone_mode=False)
    except NoArgsIsHelpError as exc:  # `procctl` alone: the help, exit code 2
        exc.show()
        sys.exit(exc.exit_code)
    except UsageError as exc:
        sys.exit(usage_error(exc))
    except ClickException as exc:
        from procctl.cli import render

        render.error(exc.format_message())
        sys.exit(exc.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        from procctl.cli import render

        render.error("interrupted")
        sys.exit(130)
    except Exception as exc:
        sys.exit(report(exc))
    sys.exit(code if isinstance(code, int) else 0)


def usage_error(exc: UsageError) -> int:
    """Print a usage error as one `Error:` line and a `Hint:` with the command's usage
    line and where its help is; exit code 2."""
    from procctl.cli import render

    hint = "procctl --help lists the commands and the options they share"
    if exc.ctx is not None:
        usage = " ".join(exc.ctx.get_usage().split()).removeprefix("Usage: ")
        hint = f"usage: {usage} (more: {exc.ctx.command_path} --help)"
    render.error(exc.format_message(), hint)
    return exc.exit_code


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
    if options.debug_given():
        traceback.print_exception(exc)
    return code


if __name__ == "__main__":
    main()
