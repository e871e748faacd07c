"""A normal install works: build the wheel, install it into a clean virtual environment
and run the installed `procctl` from outside the checkout, against a fresh home.

The editable install that the rest of the suite uses reads the source folders directly,
so it cannot notice a package that the wheel leaves out; this test can.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, SAMPLES, Procctl

from procctl.agent import VERSION

SOURCES = ("cli", "agent", "store")
# What a build never needs and a copy should not carry (caches, virtual environments).
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", "*.egg-info",
                                   "build", "dist", ".*_cache")
STEP_TIMEOUT = 240


@dataclass(frozen=True)
class Installed:
    """The wheel that was built and the clean environment it is installed in."""

    wheel: Path
    venv: Path

    @property
    def procctl(self) -> Path:
        return self.venv / "bin" / "procctl"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"


def _clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that could point back at the checkout's venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "PYTHONPYCACHEPREFIX",
                        "PROCCTL_HOME"}}
    return {**env, "NO_COLOR": "1", "COLUMNS": "200", "TERM": "dumb",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


def _check(argv: list[str | Path], cwd: Path, env: dict[str, str] | None = None
           ) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env or _clean_env(),
                          capture_output=True, text=True, timeout=STEP_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (f"{argv} -> {proc.returncode}\n"
                                  f"--stdout--\n{proc.stdout}\n--stderr--\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    """Build the wheel from a copy of the checkout (an in-tree build would leave build/
    and *.egg-info behind) and install it, with its dependencies from the package index,
    into a new virtual environment without system site-packages."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(REPO, source, ignore=NOT_SOURCE, symlinks=True)
    dist = root / "dist"
    _check([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, source],
           cwd=root)
    (wheel,) = dist.glob("procctl-*.whl")
    venv = root / "venv"
    # No pip in the new environment: the checkout's pip installs into it (--python),
    # which saves bootstrapping a second pip.
    _check([sys.executable, "-m", "venv", "--without-pip", venv], cwd=root)
    _check([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
            "-q", wheel], cwd=root)
    yield Installed(wheel, venv)


def test_the_wheel_holds_every_source_file(installed: Installed) -> None:
    """Every package (a folder with __init__.py) and every other file under cli/, agent/
    and store/ is in the wheel, as procctl.cli, procctl.agent and procctl.store."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    expected = {
        f"procctl/{path.relative_to(REPO).as_posix()}"
        for folder in SOURCES
        for path in (REPO / folder).rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    packages = {name for name in expected if name.endswith("/__init__.py")}
    assert {"procctl/agent/definition/graph/__init__.py"} <= packages
    assert not packages - names, f"packages missing from the wheel: {sorted(packages - names)}"
    assert not expected - names, f"files missing from the wheel: {sorted(expected - names)}"
    stray = {name for name in names
             if not name.startswith(("procctl/", "procctl-"))
             or "__pycache__" in name or name.startswith(("procctl/tests", "procctl/samples"))}
    assert not stray, f"the wheel carries files that are not procctl's: {sorted(stray)}"
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)


def test_the_installed_procctl_runs_outside_the_checkout(installed: Installed,
                                                         tmp_path: Path) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    for sample in ("hello.toml", "shapes.toml"):
        shutil.copy(SAMPLES / sample, work / sample)
    home = tmp_path / "home"
    env = _clean_env(PROCCTL_HOME=str(home))

    where = _check([installed.python, "-c", "import procctl.cli; print(procctl.cli.__file__)"],
                   cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(installed.venv), where

    assert _check([installed.procctl, "--version"], cwd=work, env=env).stdout.strip() == (
        f"procctl {VERSION}")
    drawn = _check([installed.procctl, "graph", "shapes.toml"], cwd=work, env=env).stdout
    assert drawn.startswith("flowchart TD") and "switch route" in drawn, drawn  # piped: Mermaid
    try:
        ran = _check([installed.procctl, "run", "hello.toml", "--wait", "--json"],
                     cwd=work, env=env)
        summary = json.loads(ran.stdout)
        assert summary["status"] == "completed", summary
        assert summary["result"] == {"greeting": "Hello, world!", "letters": 5}, summary
        status = _check([installed.procctl, "agent", "status", "--json"], cwd=work, env=env)
        agent_pid = json.loads(status.stdout)["pid"]
        exe = Path(f"/proc/{agent_pid}/cmdline").read_bytes().split(b"\0")[0].decode()
        assert Path(exe).is_relative_to(installed.venv), f"the agent runs {exe}"
    finally:
        subprocess.run([str(installed.procctl), "agent", "stop"], cwd=work, env=env,
                       capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        Procctl(home).stop_agent()
