"""Instance ID prefixes through the real command: unique, ambiguous, too short, and
`%` / `_`, which are characters, not patterns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers import Procctl

from procctl.store import Store

HELLO = """
[process]
name = "prefixes"

[[steps]]
id = "done"
kind = "return"
value = 1
"""


def _add_finished(procctl: Procctl, template_id: str, instance_id: str, status: str) -> None:
    """An instance with a chosen ID (random IDs rarely share 4 characters), written with
    the store's own calls and the real instance's pinned definition."""
    store = Store(procctl.home / "procctl.db", must_exist=True)
    try:
        real = store.get_instance(template_id)
        store.create_instance(instance_id, real.definition_sha256, "prefixes", None, "{}",
                              '{"kind": "cli"}')
        store.finish_instance(instance_id, status, error_json='{"kind": "thrown"}')
    finally:
        store.close()


def test_prefixes_unique_ambiguous_short_and_patterns(
        procctl: Procctl, write_definition: Callable[[str, str], Path]) -> None:
    definition = write_definition(HELLO, "prefixes.toml")
    real = procctl.ok("run", definition, "--wait", "--json").json()["instance_id"]

    assert procctl.ok("show", real[:4], "--json").json()["instance_id"] == real
    for pattern in ("____", "%", "%%%%", real[:3] + "_", real[:4] + "%"):
        wild = procctl("show", pattern)
        assert wild.code == 5, str(wild)
        assert wild.err.startswith(f"Error: no instance {pattern!r}"), str(wild)

    _add_finished(procctl, real, "abcd00000001", "failed")
    _add_finished(procctl, real, "abcd00000002", "completed")
    for command in (("show", "abcd"), ("show", "abcd0000000"), ("retry", "abcd")):
        ambiguous = procctl(*command)
        assert ambiguous.code == 5, str(ambiguous)
        first, hint = ambiguous.err.splitlines()[:2]
        assert first.startswith(f"Error: instance ID prefix {command[1]!r} is ambiguous: "
                                "it matches 2 instances: "), str(ambiguous)
        assert "abcd00000002 (prefixes, completed)" in first
        assert "abcd00000001 (prefixes, failed)" in first
        assert hint.startswith("Hint: give more characters of the ID"), str(ambiguous)
    assert procctl.ok("show", "abcd00000001", "--json").json()["status"] == "failed"

    short = procctl("show", "abc")
    assert short.code == 5, str(short)
    assert short.err.startswith("Error: instance ID prefix 'abc' is too short (give at "
                                "least 4 characters); it matches 2 instance(s): "), str(short)
    alone = procctl("show", real[:2])
    assert alone.code == 5 and f"{real} (prefixes, completed)" in alone.err, str(alone)
