"""Time the tests moved onto the engine harness: the end-to-end files as they were before
the move (read from git at BEFORE) against what replaced them (the shrunk end-to-end
files and tests/engine), in one run on the same machine, one file at a time (-n0).

    python tests/engine/compare_moved.py [--rounds 2]

prints, per round, the wall time of each set (one pytest run each) with its counts,
and `uptime` before each round
(the machine is shared: compare the ratio, not the absolute times). Not a test: pytest
does not collect it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: the commit before the first move (the harness and testpaths only)
BEFORE = "c5dc8c0"
MOVED = ["test_language", "test_steps", "test_checkpoint_blocks", "test_validate_findings",
         "test_bad_definitions", "test_doc_examples", "test_checkpoints", "test_regressions"]
#: what replaced them: the end-to-end files that stayed, and the engine files
AFTER = ([f"tests/e2e/{name}.py" for name in MOVED if (REPO / f"tests/e2e/{name}.py").exists()]
         + [f"tests/engine/{name}.py" for name in MOVED])
SUPPORT = ["tests/conftest.py", "tests/helpers.py", "tests/unit/test_docs.py",
           "tests/unit/__init__.py"]


def git_show(commit: str, path: str) -> str | None:
    done = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, capture_output=True,
                          text=True)
    return done.stdout if done.returncode == 0 else None


def checkout_before(root: Path) -> list[str]:
    """The moved files as they were, with the conftest and helpers they used, and the
    docs and samples of today (the doc examples are read from docs/ beside tests/)."""
    for folder in ("docs", "samples"):
        shutil.copytree(REPO / folder, root / folder)
    for path in [f"tests/e2e/{name}.py" for name in MOVED] + SUPPORT:
        text = git_show(BEFORE, path)
        if text is not None:
            (root / path).parent.mkdir(parents=True, exist_ok=True)
            (root / path).write_text(text, encoding="utf-8")
    return [f"tests/e2e/{name}.py" for name in MOVED]


def timed(files: list[str], cwd: Path, tests_dir: Path) -> tuple[float, str]:
    """One pytest run of `files` (-n0): its wall time and its last line (the counts)."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-n0", "-p", "no:cacheprovider",
         "-c", str(REPO / "pyproject.toml"), "--rootdir", str(cwd),
         "-o", f"pythonpath={tests_dir}", *files],
        cwd=cwd, capture_output=True, text=True,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    lines = done.stdout.strip().splitlines()
    return time.monotonic() - started, lines[-1] if lines else done.stderr[-200:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="procctl-before-") as tmp:
        root = Path(tmp)
        before_files = checkout_before(root)
        for round_no in range(1, rounds + 1):
            load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
            print(f"round {round_no}: {load}")
            before, before_counts = timed(before_files, root, root / "tests")
            after, after_counts = timed(AFTER, REPO, REPO / "tests")
            print(f"  before {before:6.1f} s  {len(before_files)} files: {before_counts}")
            print(f"  after  {after:6.1f} s  {len(AFTER)} files: {after_counts}")
            print(f"  after/before {after / before:.2f}")

if __name__ == "__main__":
    main()
