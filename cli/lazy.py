"""Commands that are imported only when they run.

`procctl --help` lists every command from its name and help text alone. A command's
module is imported when that command is invoked (or asked for its own `--help`), so a
module that fails to import fails only its own command, through the error mapping in
`cli/app.py` ("procctl bug: ...", exit code 70), and starting procctl imports nothing
that the command at hand does not need.

A command is finished here as it loads, the same way for every command module: the
global options are added to it (cli/options.py), its help ends with its example
(cli/help_examples.py), NAME=VALUE options say so, and the summaries of a group's
subcommands are not cut short.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

import typer
import typer.main
from typer.core import MarkupMode, TyperCommand, TyperGroup

from procctl.cli import help_examples, options

try:  # the click that typer 0.29 carries; earlier typers use click itself
    from typer._click.exceptions import UsageError
except ImportError:  # pragma: no cover
    from click.exceptions import UsageError  # type: ignore[no-redef,import-not-found]

if TYPE_CHECKING:
    # The click that typer is built on (typer carries its own copy); named for types only.
    from typer._click import Command, Context

#: options whose values are `name=value` (a list in the command's signature, which
#: typer's help would show as `<list[str]>`)
NAME_VALUE_OPTIONS = frozenset({"--param", "--data", "--set"})
NAME_VALUE = "NAME=VALUE"


class LazyCommand(NamedTuple):
    """A command known by name before its module is imported.

    `target` is "module:attribute": a command function, or a typer.Typer for a command
    with subcommands. `help` is what `procctl --help` lists: the first paragraph of the
    command's own help (a test keeps the two equal). (A NamedTuple: made at start-up,
    a fifth of a dataclass's cost.)
    """

    name: str
    target: str
    help: str

    def load(self, rich_markup_mode: MarkupMode) -> Command:
        """Import the target and build its click command, as `add_typer` or `command` on
        the app itself would have. An import error propagates to the caller."""
        module_name, _, attribute = self.target.partition(":")
        target = getattr(importlib.import_module(module_name), attribute)
        holder = typer.Typer(add_completion=False, rich_markup_mode=rich_markup_mode)
        if isinstance(target, typer.Typer):
            holder.add_typer(target, name=self.name)
        else:
            holder.command(self.name)(target)
        command = typer.main.get_group(holder).commands[self.name]
        finish(command, self.name)
        return command


def finish(command: Command, path: str) -> None:
    """What every command gets (see the module's doc); `path` is its name after
    `procctl` ("agent start"). A group's subcommands get it too."""
    command.epilog = help_examples.epilog(path)
    taken = {name for param in command.params for name in param.opts}
    for param in command.params:
        if (param.metavar is None and param.param_type_name == "option"
                and NAME_VALUE_OPTIONS & set(param.opts)):
            param.metavar = NAME_VALUE
    command.params.extend(param for param in options.global_params()
                          if not taken & set(param.opts))
    _name_the_command_in_usage_errors(command)
    if isinstance(command, TyperGroup):
        for name, sub in command.commands.items():
            if not sub.short_help and sub.help:
                sub.short_help = first_paragraph(sub.help)
            finish(sub, f"{path} {name}")


def _name_the_command_in_usage_errors(command: Command) -> None:
    """A usage error found while `command` parses its arguments (an option without its
    value) carries the command's context, so that cli/app.py's hint can show its usage:
    the parser of the click in typer raises it without one."""
    parse = command.parse_args

    def parse_args(ctx: Context, args: list[str]) -> list[str]:
        try:
            return parse(ctx, args)
        except UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise

    command.parse_args = parse_args  # type: ignore[method-assign]


def first_paragraph(text: str) -> str:
    """A help text's first paragraph, on one line: what a command list shows."""
    return " ".join(text.strip().split("\n\n")[0].split())


class _Deferred(TyperCommand):
    """Stands in for a command in its group: lists with the registered help, and imports
    the real command only when click makes the context to run it (or to print its help).

    Click resolves a subcommand before the group's own callback runs, and makes the
    subcommand's context after it: loading here rather than in the group's get_command
    means `--debug` is already known when an import fails.
    """

    def __init__(self, entry: LazyCommand, rich_markup_mode: MarkupMode) -> None:
        # short_help: `procctl --help` lists the whole summary, wrapped, not cut short
        super().__init__(entry.name, help=entry.help, short_help=entry.help,
                         rich_markup_mode=rich_markup_mode)
        self.entry = entry
        self._loaded: Command | None = None

    def make_context(self, info_name: str | None, args: list[str],
                     parent: Context | None = None, **extra: Any) -> Context:
        """The real command's context: the group invokes `context.command`, the real one."""
        if self._loaded is None:
            try:
                self._loaded = self.entry.load(self.rich_markup_mode)
            except Exception:
                # The command's own --debug cannot be parsed without the command.
                options.set_debug("--debug" in args[:args.index("--")]
                                  if "--" in args else "--debug" in args)
                raise
        return self._loaded.make_context(info_name, args, parent=parent, **extra)


class LazyGroup(TyperGroup):
    """The click group of a typer app whose commands are imported only when they run:
    pass a subclass made by `lazy_group` as `cls=` to typer.Typer."""

    lazy_commands: ClassVar[tuple[LazyCommand, ...]] = ()

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for entry in self.lazy_commands:
            self.commands[entry.name] = _Deferred(entry, self.rich_markup_mode)

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        """As the group's, with its context on a usage error (see `finish`)."""
        try:
            return super().parse_args(ctx, args)
        except UsageError as exc:
            if exc.ctx is None:
                exc.ctx = ctx
            raise


def lazy_group(commands: tuple[LazyCommand, ...]) -> type[LazyGroup]:
    """A LazyGroup class that holds `commands`, in the order `--help` lists them."""

    class Group(LazyGroup):
        lazy_commands = commands

    return Group
