"""The process language where a user meets it through `procctl` and the agent process:
`run --wait` printing an intermediate result while the instance goes on to pause (then
`list-paused` and `procctl resume`), and a task plugin found through an installed
distribution's entry point (the agent must start with it on its Python path).

What the language does (switch, inclusive, parallel, while, return in loops, scope,
intermediate_return's summary, call, retries, module plugins) is checked in-process on
the real engine: tests/engine/test_language.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from helpers import Procctl, instance_state, unique_key, wait_for

WriteDefinition = Callable[..., Path]


def summary_of(result: Any, expect: int = 0) -> dict[str, Any]:
    """The `run --wait --json` summary of a finished command; checks its exit code."""
    assert result.code == expect, str(result)
    summary: dict[str, Any] = result.json()
    return summary


def run_wait(procctl: Procctl, path: Path, *args: str, expect: int = 0,
             **kwargs: Any) -> dict[str, Any]:
    """`run --wait --json`; check the exit code, return the summary."""
    return summary_of(procctl("run", path, "--wait", "--json", *args, **kwargs), expect)


# -- intermediate_return ----------------------------------------------------------------

INTERMEDIATE = """
[process]
name = "lang-intermediate"
[process.params.order]
type = "str"
[process.params.pause]
type = "bool"

[[steps]]
id = "ack"
kind = "intermediate_return"
value = { accepted = true, order = "{{ order }}" }

[[steps]]
id = "work"
task = "sleep"
with = { seconds = "0.3s" }

[[steps]]
id = "maybe-wait"
kind = "if"
condition = "pause"
[[steps.then]]
id = "wait"
kind = "checkpoint"
correlation_id = "intermediate-{{ order }}"

[[steps]]
id = "done"
kind = "return"
value = { ack = "{{ results['ack'] }}", finished = true }
"""


def test_run_wait_prints_the_intermediate_result_and_the_instance_goes_on(
        shared_procctl: Procctl, write_definition: WriteDefinition) -> None:
    path = write_definition(INTERMEDIATE)
    paused_key = unique_key()
    text = shared_procctl("run", path, "--wait", "-p", f"order={paused_key}",
                          "-p", "pause=true")

    assert text.code == 0, str(text)
    assert "Intermediate result:" in text.out, str(text)
    assert paused_key in text.out
    # The instance went on to pause at the checkpoint after the intermediate result.
    found = re.search(r"instance ([0-9a-f]{12})", text.out)
    assert found, text.out
    paused_id = found.group(1)
    wait_for(lambda: instance_state(shared_procctl, paused_id)[0] == "paused", timeout=30,
             message="the instance to pause after its intermediate result")
    rows = shared_procctl.ok("list-paused", "--json").json()
    assert [(r["instance_id"], r["checkpoint"]) for r in rows
            if r["correlation_id"] == f"intermediate-{paused_key}"] == [(paused_id, "wait")]

    resumed = shared_procctl.ok("resume", "-c", f"intermediate-{paused_key}", "--json").json()
    assert resumed["instance"]["status"] == "completed", resumed
    assert resumed["instance"]["result"]["ack"] == {"accepted": True, "order": paused_key}


# -- plugins ----------------------------------------------------------------------------


def test_entry_point_plugin_from_an_installed_distribution(
        procctl: Procctl, write_definition: WriteDefinition, tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "myplug-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: myplug\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[procctl.tasks]\nshout = myplug_mod:shout\n")
    (site / "myplug_mod.py").write_text(
        "def shout(text, context):\n"
        "    return {'loud': text.upper() + '!', 'step': context.step_id}\n")
    path = write_definition("""
[process]
name = "lang-entry-point"

[[steps]]
id = "loud"
task = "shout"
with = { text = "hello" }
""")
    env = {"PYTHONPATH": str(site)}
    summary = run_wait(procctl, path, env=env)
    assert summary["status"] == "completed", summary
    assert summary["result"] == {"loud": "HELLO!", "step": "loud"}
