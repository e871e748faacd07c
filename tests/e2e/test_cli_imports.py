"""A command that cannot be imported breaks only itself: `procctl --help` and every other
command still work, and the broken one says `procctl bug:` with exit code 70.

The fault is the one a wheel once shipped: a package left out of the install. A
`sitecustomize` module on PYTHONPATH marks modules as unimportable (None in sys.modules,
Python's own way to block an import) before the real `procctl` command starts.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from helpers import SAMPLES, Procctl

COMMANDS = ("run", "show", "explain", "list", "validate", "graph", "resume", "retry", "cancel",
            "follow", "wait", "list-paused", "purge", "purge-expired", "signals", "agent",
            "agents", "config", "ui")
COMMAND_MODULES = ("agent", "agents", "cancel", "config", "explain", "follow", "graph",
                   "listing", "paused", "purge", "purge_finished", "resume", "retry", "run",
                   "show", "signals", "ui",
                   "validate", "wait")
# Each command's help and one option or subcommand that must be in it.
FULL_HELP = {
    ("run",): "--params-file",
    ("show",): "{instance_id}",
    ("list",): "--status",
    ("validate",): "{file}",
    ("graph",): "--format",
    ("resume",): "--correlation-id",
    ("retry",): "{instance_id}",
    ("list-paused",): "--json",
    ("explain",): "{instance_id}",
    ("cancel",): "--reason",
    ("follow",): "{instance_id}",
    ("wait",): "--timeout",
    ("purge",): "--older-than",
    ("ui",): "--port",
    ("agents",): "--all",
    ("purge-expired",): "--dry-run",
    ("signals",): "--json",
    ("agent",): "status",
    ("agent", "run"): "foreground",
    ("agent", "stop"): "--help",
    ("config",): "set",
    ("config", "set"): "{value}",
}


def _blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose interpreters cannot import `modules`."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules),
        encoding="utf-8")
    return {"PYTHONPATH": str(site)}


def test_a_command_that_cannot_be_imported_breaks_only_itself(procctl: Procctl,
                                                              tmp_path: Path) -> None:
    env = _blocking(tmp_path, "procctl.agent.definition.graph")
    helped, graphed, debugged, validated = procctl.many(
        ["--help"], ["graph", SAMPLES / "hello.toml"], ["--debug", "graph", SAMPLES / "hello.toml"],
        ["validate", SAMPLES / "hello.toml"], env=env)

    assert helped.code == 0, str(helped)
    listed = helped.out.split("Commands:")[1]
    for name in COMMANDS:
        assert f"\n  {name} " in listed, f"{name} missing from\n{helped.out}"

    assert graphed.code == 70, str(graphed)
    assert "Traceback" not in graphed.err, str(graphed)
    first, *rest = graphed.err.splitlines()
    assert first.startswith("Error: procctl bug: ModuleNotFoundError:"), str(graphed)
    assert "procctl.agent.definition.graph" in first, str(graphed)
    assert all(line.startswith("Hint:") for line in rest), str(graphed)

    assert debugged.code == 70, str(debugged)
    assert debugged.err.startswith(first), str(debugged)
    assert "Traceback" in debugged.err, str(debugged)  # --debug shows where it failed

    assert validated.code == 0, str(validated)


def test_help_imports_no_command_module(procctl: Procctl, tmp_path: Path) -> None:
    every = [f"procctl.cli.commands.{name}" for name in COMMAND_MODULES]
    blocked, normal = procctl("--help", env=_blocking(tmp_path, *every)), procctl("--help")
    assert normal.code == 0, str(normal)
    assert (blocked.code, blocked.out) == (0, normal.out), str(blocked)

    imported = subprocess.run(
        [sys.executable, "-c",
         "import sys, procctl.cli.app\n"
         "print(sorted(m for m in sys.modules if m.startswith('procctl.cli.commands.')))"],
        capture_output=True, text=True, timeout=60, check=True)
    assert imported.stdout.strip() == "[]", imported.stdout


def test_every_command_keeps_its_full_help(procctl: Procctl) -> None:
    results = procctl.many(*[[*argv, "--help"] for argv in FULL_HELP])
    for (argv, needle), result in zip(FULL_HELP.items(), results, strict=True):
        assert result.code == 0, str(result)
        assert result.out.startswith(f"Usage: procctl {' '.join(argv)} "), str(result)
        assert needle in result.out, str(result)


def test_the_listed_help_is_the_commands_own() -> None:
    """What `procctl --help` lists for a command (registered with its name, so that
    listing imports nothing) is the first paragraph of the command's own help."""
    from procctl.cli.app import COMMANDS as COMMAND_TABLE

    assert tuple(entry.name for entry in COMMAND_TABLE) == COMMANDS
    for entry in COMMAND_TABLE:
        loaded = entry.load(rich_markup_mode=None)
        first = " ".join((loaded.help or "").split("\n\n")[0].split())
        assert first == entry.help, f"{entry.name}: {entry.help!r} is not {first!r}"
