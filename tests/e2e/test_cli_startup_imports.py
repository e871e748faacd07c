"""`procctl --help`, `--version` and `list` import only what they need (issue 11: their
start-up stays within 1.5x of `python -c "import typer, rich"`, bench/cli_startup.py).

Timing on a shared machine would make a flaky test; what makes start-up slow is what is
imported, and that is exact. The real `procctl` command runs with a `sitecustomize` on
PYTHONPATH that writes `sys.modules` to a file when the interpreter exits (after the
command, whatever it imported and however: `importlib.import_module` too).
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import struct
import subprocess
import termios
from pathlib import Path

import pytest
from helpers import PROCCTL, Procctl, Result

from procctl.store import Store

#: never needed to print help, the version or the instances
HEAVY = ("asyncio", "jinja2", "watchdog", "ssl", "http.client", "pydantic", "socket",
         "procctl.agent.definition", "procctl.agent.engine", "procctl.agent.client",
         "procctl.agent.daemon", "procctl.agent.config", "procctl.store.protocol",
         "tomllib", "tomli_w", "platformdirs", "importlib.metadata", "logging")
#: what `--help` and `--version` do without: no store, no tables, no command module
NOT_FOR_HELP = ("rich.console", "rich.table", "sqlite3", "procctl.store",
                "procctl.cli.render", "procctl.cli.commands", "procctl.agent.errors")
_DUMP_MODULES = """\
import atexit, os, sys

def _dump_modules():
    with open(os.environ["PROCCTL_TEST_MODULES"], "w", encoding="utf-8") as out:
        out.write("\\n".join(sorted(sys.modules)))

atexit.register(_dump_modules)
"""


def run_recorded(procctl: Procctl, tmp_path: Path, *args: str) -> tuple[Result, set[str]]:
    """Run procctl; what it printed, and every module imported when it exited."""
    site, dump = tmp_path / "site", tmp_path / "modules.txt"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_DUMP_MODULES, encoding="utf-8")
    dump.unlink(missing_ok=True)
    result = procctl(*args, env={"PYTHONPATH": str(site), "PROCCTL_TEST_MODULES": str(dump)})
    assert result.code == 0, str(result)
    modules = set(dump.read_text(encoding="utf-8").split())
    assert {"typer", "procctl.cli.app"} <= modules, sorted(modules)
    return result, modules


def on_terminal(procctl: Procctl, tmp_path: Path, *args: str) -> tuple[str, set[str]]:
    """Run procctl with stdout on a pseudo-terminal 160 columns wide (TERM=xterm-256color):
    what it wrote there, and every module imported when it exited."""
    site, dump = tmp_path / "site", tmp_path / "modules.txt"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(_DUMP_MODULES, encoding="utf-8")
    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {**procctl.env, "TERM": "xterm-256color", "PYTHONPATH": str(site),
           "PROCCTL_TEST_MODULES": str(dump)}
    for name in ("NO_COLOR", "COLUMNS", "LINES", "FORCE_COLOR", "TTY_COMPATIBLE"):
        env.pop(name, None)
    proc = subprocess.Popen([PROCCTL, *args], stdin=subprocess.DEVNULL, stdout=child_fd,
                            stderr=subprocess.PIPE, env=env)
    os.close(child_fd)
    chunks = []
    while True:
        try:
            chunk = os.read(main_fd, 65536)
        except OSError:  # EIO: the terminal's other side is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main_fd)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return b"".join(chunks).decode(), set(dump.read_text(encoding="utf-8").split())


def offenders(modules: set[str], unwanted: tuple[str, ...]) -> list[str]:
    """The modules among `modules` that are, or are inside, one of `unwanted`."""
    return sorted(m for m in modules if any(m == u or m.startswith(u + ".") for u in unwanted))


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_and_version_import_typer_and_the_command_table_only(
        procctl: Procctl, tmp_path: Path, argv: list[str]) -> None:
    result, modules = run_recorded(procctl, tmp_path, *argv)
    assert result.out.startswith("Usage: procctl " if argv == ["--help"] else "procctl "), \
        str(result)
    assert offenders(modules, HEAVY + NOT_FOR_HELP) == [], result.args


def test_list_imports_the_store_and_nothing_heavy(procctl: Procctl, home: Path,
                                                           tmp_path: Path) -> None:
    home.mkdir(mode=0o700)
    store = Store(home / "procctl.db")
    try:
        store.put_definition("a" * 64, "startup-list", "1", None, "[process]\n")
        for number in range(3):
            store.create_instance(f"startup-{number}", "a" * 64, "startup-list", "1",
                                  json.dumps({"n": number}), "{}")
    finally:
        store.close()

    listed, modules = run_recorded(procctl, tmp_path, "list", "--limit", "2")
    lines = listed.out.splitlines()
    assert lines[0].split() == ["INSTANCE", "PROCESS", "STATUS", "STARTED", "DURATION"]
    assert [line.split()[0] for line in lines[1:]] == ["startup-2", "startup-1"]
    assert {"procctl.store.sqlite", "procctl.cli.commands.listing"} <= modules
    assert offenders(modules, HEAVY) == [], listed.args
    # to a pipe, plain names: the table rich would print, written without rich; and
    # without decoding params and results (only --json prints them)
    assert offenders(modules, ("rich", "procctl.agent.values")) == [], listed.args

    # on a terminal: rich's coloured table, written without rich too (cli/plain.py)
    shown, modules = on_terminal(procctl, tmp_path, "list", "--limit", "2")
    assert shown.startswith("\x1b[1mINSTANCE"), repr(shown)
    assert "\x1b[36mrunning\x1b[0m" in shown, repr(shown)
    assert offenders(modules, (*HEAVY, "rich")) == [], shown

    as_json, modules = run_recorded(procctl, tmp_path, "list", "--json")
    assert [row["instance_id"] for row in json.loads(as_json.out)] == [
        "startup-2", "startup-1", "startup-0"]
    assert offenders(modules, HEAVY) == [], as_json.args


def test_list_on_a_missing_home_imports_nothing_heavy(procctl: Procctl,
                                                      tmp_path: Path) -> None:
    result, modules = run_recorded(procctl, tmp_path, "list")
    assert "No procctl home at" in result.out, str(result)
    assert offenders(modules, (*HEAVY, "rich", "sqlite3")) == [], result.args


@pytest.mark.parametrize("command", ["resume", "retry"])
def test_resume_and_retry_do_not_import_the_definition_loader(
        procctl: Procctl, tmp_path: Path, command: str) -> None:
    # Their command modules are imported to print their help: what they print an outcome
    # with (cli/outcome.py) must not pull in `run`'s loader and Jinja with it.
    result, modules = run_recorded(procctl, tmp_path, command, "--help")
    assert f"Usage: procctl {command}" in result.out, str(result)
    assert f"procctl.cli.commands.{command}" in modules
    assert offenders(modules, ("jinja2", "procctl.agent.definition",
                               "procctl.cli.commands.run")) == [], result.args
