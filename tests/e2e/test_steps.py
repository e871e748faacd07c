"""Step behaviour where a user meets it through `procctl` and the agent: a failed
instance is exit code 1 and one printed line naming the step, and a file task's
relative paths resolve against the definition, not the command's directory.

Every step kind and built-in task is checked in-process on the real engine:
tests/engine/test_steps.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Procctl

WriteDefinition = Callable[..., Path]


def run_wait(procctl: Procctl, path: Path, *args: str, expect: int = 0,
             **kwargs: Any) -> dict[str, Any]:
    """`run --wait --json`; check the exit code, return the summary."""
    result = procctl("run", path, "--wait", "--json", *args, **kwargs)
    assert result.code == expect, str(result)
    summary: dict[str, Any] = result.json()
    return summary


# -- throw ------------------------------------------------------------------------------


def test_throw_fails_the_instance_with_exit_code_1_and_one_line_naming_the_step(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition("""
[process]
name = "throwing"
[process.params.code]
type = "int"

[[steps]]
id = "check"
kind = "if"
condition = "code != 0"

[[steps.then]]
id = "boom"
kind = "throw"
message = "bad code {{ code }}"
""")
    as_json, plain = shared_procctl.many(("run", path, "--wait", "--json", "-p", "code=42"),
                                         ("run", path, "--wait", "-p", "code=7"))
    assert as_json.code == 1, str(as_json)
    summary = as_json.json()
    assert summary["status"] == "failed"
    assert summary["error"]["message"] == "bad code 42"
    # Without --json the failure is one readable line naming the step.
    assert plain.code == 1, str(plain)
    assert "failed at step 'boom': bad code 7" in plain.err


# -- file.write / file.read -------------------------------------------------------------


def test_file_write_then_read_relative_to_the_definition(
        shared_procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    path = write_definition("""
[process]
name = "files"

[[steps]]
id = "write-text"
task = "file.write"
with = { path = "out/note.txt", content = "line one\\nline two\\n" }

[[steps]]
id = "write-json"
task = "file.write"
with = { path = "out/data.json", content = { n = 1, tags = ["a", "b"] }, format = "json" }

[[steps]]
id = "read-lines"
task = "file.read"
with = { path = "out/note.txt", format = "lines" }

[[steps]]
id = "read-json"
task = "file.read"
with = { path = "out/data.json", format = "json" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
lines = "{{ results['read-lines'] }}"
data = "{{ results['read-json'] }}"
written = "{{ results['write-text'].path }}"
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    summary = run_wait(shared_procctl, path, cwd=elsewhere)
    assert summary["status"] == "completed", summary["error"]
    assert summary["result"]["lines"] == ["line one", "line two"]
    assert summary["result"]["data"] == {"n": 1, "tags": ["a", "b"]}
    assert Path(summary["result"]["written"]) == tmp_path / "out" / "note.txt"
    assert (tmp_path / "out" / "note.txt").read_text() == "line one\nline two\n"
    assert json.loads((tmp_path / "out" / "data.json").read_text()) == {"n": 1, "tags": ["a", "b"]}
    assert not (elsewhere / "out").exists(), "paths must not resolve against the CLI's cwd"
