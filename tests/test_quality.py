"""Lint, types and the direction of dependencies are part of the test command."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_ruff_is_clean() -> None:
    proc = subprocess.run([str(BIN / "ruff"), "check", "."], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_is_clean(tmp_path: Path) -> None:
    # mypy cannot follow setuptools' package-dir mapping of the editable install, so
    # lay the three source folders out as the procctl package it installs as.
    package = tmp_path / "procctl"
    package.mkdir()
    for name in ("cli", "agent", "store"):
        (package / name).symlink_to(REPO / name, target_is_directory=True)
    proc = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "-p", "procctl"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _imports(folder: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (REPO / folder).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(REPO))] = names
    return found


#: the store's one import beyond the standard library: the optional PostgreSQL driver
#: (`procctl[postgres]`), imported by the PostgreSQL backend's modules only
OPTIONAL_DRIVER = {"store/postgres.py": "psycopg", "store/urls.py": "psycopg"}


def test_store_depends_on_the_standard_library_only() -> None:
    for module, names in _imports("store").items():
        for name in names:
            top = name.split(".")[0]
            assert name.startswith("procctl.store") or (
                top in sys.stdlib_module_names or top == "__future__"
                or OPTIONAL_DRIVER.get(module) == top
            ), f"{module} imports {name}"


def test_agent_never_imports_the_cli() -> None:
    for module, names in _imports("agent").items():
        assert not any(n.startswith("procctl.cli") for n in names), module


def test_engine_reaches_the_store_only_through_the_daemon() -> None:
    for folder in ("agent/engine", "agent/definition", "agent/tasks"):
        for module, names in _imports(folder).items():
            # the records and the status vocabulary (store/records.py) hold no I/O
            assert not any(n.startswith("procctl.store") and n != "procctl.store.records"
                           for n in names), module
