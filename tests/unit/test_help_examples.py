"""Every command's help ends with an example (cli/help_examples.py), and every example
is a command line the real command accepts: parsed here by the command itself, so an
example naming an option the command lacks, or leaving out an argument, fails."""

from __future__ import annotations

import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from typer.core import TyperGroup
from typer.testing import CliRunner

from procctl.agent.paths import HomePaths
from procctl.cli.app import COMMANDS, app
from procctl.cli.help_examples import EXAMPLES, epilog
from procctl.cli.options import GlobalOptions


def _paths(command: object, path: str) -> Iterator[str]:
    """`path` and, for a group, each of its subcommands' paths."""
    yield path
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            yield from _paths(sub, f"{path} {name}")


def command_paths() -> list[str]:
    """Every command and subcommand procctl has now, as `procctl --help` would list
    them: "run", "agent", "agent start", ..."""
    paths: list[str] = []
    for entry in COMMANDS:
        paths += _paths(entry.load(rich_markup_mode=None), entry.name)
    return paths


def parse(argv: list[str], home: Path) -> list[str]:
    """Parse `argv` (after `procctl`) as procctl does, down to the command it names,
    without running it; that command's path ["agent", "start"]. A usage error is
    raised."""
    root = typer.main.get_command(app)
    context = root.make_context("procctl", list(argv))
    context.obj = GlobalOptions(HomePaths.resolve(home))  # what the app callback makes
    command, path = root, []
    args = [*context._protected_args, *context.args]
    while isinstance(command, TyperGroup):
        name, sub, args = command.resolve_command(context, args)
        assert sub is not None and name is not None
        context = sub.make_context(name, args, parent=context)
        command = context.command
        path.append(name)
        args = [*context._protected_args, *context.args]
    return path


def test_every_command_and_subcommand_has_an_example() -> None:
    missing = [path for path in command_paths() if not EXAMPLES.get(path)]
    assert missing == [], f"add an example for {missing} to cli/help_examples.py"


@pytest.mark.parametrize("path", sorted(EXAMPLES))
def test_each_example_runs_its_own_command(path: str) -> None:
    for line in EXAMPLES[path]:
        argv = shlex.split(line)
        assert argv[0] == "procctl", line
        assert argv[1:1 + len(path.split())] == path.split(), (
            f"the example of {path!r} runs another command: {line}")


@pytest.mark.parametrize("path", command_paths())
def test_each_example_is_accepted_by_the_real_command(path: str, tmp_path: Path) -> None:
    for line in EXAMPLES[path]:
        argv = shlex.split(line)[1:]
        assert parse(argv, tmp_path)[:len(path.split())] == path.split(), line


def test_the_parse_check_catches_a_wrong_example(tmp_path: Path) -> None:
    """The check above can fail: an unknown option, a missing argument."""
    from typer._click.exceptions import UsageError

    with pytest.raises(UsageError, match="No such option"):
        parse(["list", "--colour", "red"], tmp_path)
    with pytest.raises(UsageError, match="Missing"):
        parse(["show"], tmp_path)


@pytest.mark.parametrize("path", command_paths())
def test_each_help_ends_with_its_example_and_shows_no_python_types(path: str) -> None:
    result = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert "list[str]" not in result.output, result.output
    examples = EXAMPLES[path]
    title = "Example:" if len(examples) == 1 else "Examples:"
    tail = [line.strip() for line in result.output.rstrip().splitlines()[-len(examples) - 1:]]
    assert tail == [title, *examples], result.output
    # every command takes the global options after its name
    assert "--home <path>" in result.output and "--debug" in result.output


def test_the_epilog_keeps_its_lines() -> None:
    text = epilog("run")
    assert text is not None
    assert text.splitlines() == ["\b", "Example:", "  " + EXAMPLES["run"][0]]
    assert epilog("no-such-command") is None
