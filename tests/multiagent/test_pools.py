"""Pools: a definition with `pool = NAME` runs only on the agents of that pool."""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from fleet import Fleet
from helpers import wait_for

POOLED = """
[process]
name = "pooled"
pool = "build"
[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "pool-{{ key }}"

[[steps]]
id = "done"
kind = "return"
value = { payload = "{{ results['wait'].payload }}" }
"""


def _record(fleet: Fleet, instance_id: str) -> Any:
    with fleet.reading() as store:
        return store.get_instance(instance_id)


def test_only_the_pool_runs_its_definition_even_when_another_agent_resumes_it(
        fleet: Fleet, tmp_path: Path) -> None:
    build = fleet.add("build", settings=[("pool", "build")])
    other = fleet.add("other")  # pool "default"
    build.start()
    other.start()
    definition = tmp_path / "pooled.toml"
    definition.write_text(POOLED, encoding="utf-8")
    key = uuid.uuid4().hex[:8]

    refused = other.procctl("run", definition, "-p", f"key={key}", "--wait", "--json")
    assert refused.code == 8, str(refused)
    assert "runs on agents of pool 'build' only" in refused.err
    assert "this agent is in pool 'default'" in refused.err

    paused = build.procctl.ok("run", definition, "-p", f"key={key}", "--wait",
                              "--json").json()
    assert paused["status"] == "paused", paused
    instance_id = paused["instance_id"]
    assert _record(fleet, instance_id).pool == "build"

    # The signal comes in on the agent outside the pool: recorded there, run by the pool.
    tmp = other.signals_dir / f".go-{key}.tmp"
    tmp.write_text(json.dumps({"correlation_id": f"pool-{key}", "payload": {"n": 7},
                               "signal_id": f"go-{key}"}), encoding="utf-8")
    os.rename(tmp, other.signals_dir / f"go-{key}.json")
    done = wait_for(lambda: (r := _record(fleet, instance_id)).status == "completed" and r,
                    timeout=30, interval=0.1, message="the pooled instance to complete")
    assert done.owner == build.agent_id
    shown = build.procctl.ok("show", instance_id, "--json").json()
    assert shown["result"] == {"payload": {"n": 7}}
    history = Counter(event["kind"] for event in shown["history"])
    assert history["signal_applied"] == 1 and history["instance_completed"] == 1, history
