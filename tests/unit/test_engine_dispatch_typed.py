"""The engine's dispatch on step kind is exhaustive: a step kind added to AnyStep fails
strict mypy at runner.step_work until the engine has a handler for it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent

PROBE_KIND = '''

@dataclass(frozen=True)
class ProbeStep(Step):
    """A step kind that no view handles yet."""


'''


@pytest.mark.timeout(300)
def test_a_new_step_kind_fails_type_checking_until_the_engine_handles_it(
        tmp_path: Path) -> None:
    package = tmp_path / "procctl"
    package.mkdir()
    for name in ("cli", "store"):
        (package / name).symlink_to(REPO / name, target_is_directory=True)
    shutil.copytree(REPO / "agent", package / "agent",
                    ignore=shutil.ignore_patterns("__pycache__"))
    model = package / "agent" / "definition" / "model.py"
    text = model.read_text(encoding="utf-8")
    union = re.search(r"\nAnyStep = \(\n(.*?)\n\)\n", text, re.S)
    assert union is not None, "model.py's AnyStep union is not where this test expects it"
    model.write_text(text[:union.start()] + PROBE_KIND
                     + text[union.start():union.end() - 3] + "\n    | ProbeStep\n)\n"
                     + text[union.end():], encoding="utf-8")
    runner = package / "agent" / "engine" / "runner.py"
    proc = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "--follow-imports", "silent",
         "-m", "procctl.agent.engine.runner"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280,
    )
    errors = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 1, proc.stdout
    where, _, message = errors[0].partition(": error: ")
    line = int(where.split(":")[1])
    assert "assert_never(step)" in runner.read_text(encoding="utf-8").splitlines()[line - 1]
    assert "ProbeStep" in message and "assert_never" in message
