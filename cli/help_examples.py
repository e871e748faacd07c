"""The example at the end of each command's help, in one table.

cli/lazy.py appends a command's examples to its help as it loads it, so a command
module needs no epilog of its own. Every command in cli/app.py's COMMANDS has an
entry here, and so has every subcommand of a group ("agent start"):
tests/unit/test_help_examples.py checks that, and parses each example with the real
command, so an example cannot name an option the command does not have.
"""

from __future__ import annotations

#: command path after `procctl` -> its examples, each a whole command line
EXAMPLES: dict[str, tuple[str, ...]] = {
    "run": ("procctl run samples/approval.toml --wait -p order=A-17 -p amount=1200",),
    "show": ("procctl show 3f6c2a9e",),
    "list": ("procctl list --status failed",),
    "validate": ("procctl validate samples/approval.toml",),
    "graph": ("procctl graph samples/approval.toml --output approval.md",),
    "resume": ("procctl resume --correlation-id approval-A-17 --data approved=true "
               "--data by=ada",),
    "retry": ("procctl retry 3f6c2a9e",),
    "list-paused": ("procctl list-paused --json",),
    "purge-expired": ("procctl purge-expired --dry-run",),
    "signals": ("procctl signals --all", "procctl signals --clear --older-than 7d --dry-run"),
    "agent": ("procctl agent status",),
    "agent run": ("procctl agent run --home /srv/procctl",),
    "agent start": ("procctl agent start",),
    "agent stop": ("procctl agent stop",),
    "agent status": ("procctl agent status --json",),
    "agents": ("procctl agents --all",),
    "config": ("procctl config set shutdown_grace 30s",),
    "config show": ("procctl config show --json",),
    "config set": ("procctl config set shutdown_grace 30s",),
    # the commands of issue 13, written from its text before they land
    "cancel": ("procctl cancel 3f6c2a9e --reason 'ordered twice'",),
    "follow": ("procctl follow 3f6c2a9e",),
    "wait": ("procctl wait 3f6c2a9e --timeout 10m",),
    "explain": ("procctl explain 3f6c2a9e",),
    "purge": ("procctl purge --finished --older-than 30d",),
    "ui": ("procctl ui --open",),
}


def epilog(path: str) -> str | None:
    """The help's closing paragraph for the command `path` ("agent start"): its
    examples, one a line, kept as they are (click's `\\b` stops it rewrapping them);
    None for a command with none."""
    examples = EXAMPLES.get(path)
    if not examples:
        return None
    title = "Example:" if len(examples) == 1 else "Examples:"
    return "\b\n" + "\n".join((title, *(f"  {line}" for line in examples)))
