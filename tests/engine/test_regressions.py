"""Engine bugs found while writing the docs, kept fixed: on the real engine in-process
(the harness in tests/engine/harness.py). Moved from tests/e2e/test_regressions.py (same
definitions and assertions; exit code 0 there is status completed here, and a hang is
the harness's time limit)."""

from __future__ import annotations

from engine.harness import Engine


def test_a_loop_variable_shadows_a_param_and_gives_it_back(
        engine: Engine) -> None:
    # Validation accepts reading `item` after the loop (it is a param); the engine used to
    # delete it at the loop's end, so the return step failed with "'item' is undefined".
    path = engine.write("""\
[process]
name = "shadow"

[process.params.item]
type = "str"
default = "outer"

[[steps]]
id = "loop"
kind = "foreach"
items = "[1, 2]"

[[steps.body]]
id = "show"
task = "log"
with = { message = "{{ item }}" }

[[steps]]
id = "done"
kind = "return"
value = { item = "{{ item }}", loop = "{{ results['loop'] }}" }
""")
    summary = engine.run(path)
    assert summary["status"] == "completed", summary
    assert summary["result"] == {"item": "outer", "loop": [1, 2]}


def test_returning_results_does_not_hang(
        engine: Engine) -> None:
    # `{{ results }}` used to be the engine's live dict: the return step stored the value
    # into that same dict, the result contained itself, storing it failed, and the
    # instance stayed `running` with `run --wait` waiting forever.
    path = engine.write("""\
[process]
name = "all-results"

[[steps]]
id = "first"
task = "log"
with = { message = "one" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results }}"
""")
    summary = engine.run(path, timeout=30)
    assert summary["status"] == "completed", summary
    assert summary["result"] == {"first": "one"}
