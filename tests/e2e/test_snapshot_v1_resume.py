"""A version-1 snapshot, kept in a store as a paused instance's checkpoint, resumes in a
real agent and runs to completion: the migration hands the engine its typed frame state
(the foreach's items, iteration, values so far and shadowed variable) and its typed
variables, exactly as version 1 wrote them.

tests/data/snapshot-v1.json was taken from an instance of tests/data/snapshot-v1.toml
paused at `approve` in the loop's second iteration (`typed-A-2`), after the first was
resumed with {"approved": true}.
"""

from __future__ import annotations

import json
from pathlib import Path

from helpers import Procctl

from procctl.agent import values
from procctl.store import Store

DATA = Path(__file__).resolve().parents[1] / "data"
SNAPSHOT = json.loads((DATA / "snapshot-v1.json").read_text(encoding="utf-8"))
DEFINITION = (DATA / "snapshot-v1.toml").read_text(encoding="utf-8")


def _store_paused_v1_instance(home: Path, base_dir: Path) -> str:
    """The instance as the version-1 agent left it: paused at `typed-A-2`, with the
    definition text pinned and the snapshot stored as that agent wrote it."""
    instance_id = SNAPSHOT["instance_id"]
    definition = base_dir / "typed.toml"
    definition.write_text(DEFINITION, encoding="utf-8")
    trigger = {"id": "cli", "kind": "cli", "file": str(definition), "base_dir": str(base_dir)}
    store = Store(home / "procctl.db")
    try:
        store.put_definition(SNAPSHOT["definition_sha256"], "typed-batch", "3",
                             str(definition), DEFINITION)
        store.create_instance(instance_id, SNAPSHOT["definition_sha256"], "typed-batch", "3",
                              values.dumps({"orders": ["A-1", "A-2"]}), json.dumps(trigger))
        store.save_checkpoint(instance_id, "approve", SNAPSHOT["correlation_id"],
                              (DATA / "snapshot-v1.json").read_text(encoding="utf-8"),
                              expires_at=None, pausing=True)
        store.pause_instance(instance_id, commit_value_json=values.dumps(None),
                             resume_at=None)
    finally:
        store.close()
    return instance_id


def test_a_version_1_snapshot_resumes_and_completes_in_a_real_agent(
        procctl: Procctl, home: Path, tmp_path: Path) -> None:
    procctl.ok("agent", "start")  # the home and its store, as an agent makes them
    procctl.stop_agent()
    instance_id = _store_paused_v1_instance(home, tmp_path)

    shown = procctl.ok("show", instance_id, "--json").json()
    assert shown["status"] == "paused"
    assert shown["position"] == "steps[3].body[0]"

    procctl.ok("agent", "start")
    resumed = procctl.ok("resume", "--correlation-id", "typed-A-2", "--data",
                         "approved=true", "--json", timeout=90).json()
    assert resumed["signal"]["status"] == "applied", resumed
    assert resumed["instance"]["status"] == "completed", resumed
    done = procctl.ok("show", instance_id, "--json").json()
    assert done["status"] == "completed", json.dumps(done, indent=1)
    first, second = done["result"]["each"]
    # The first iteration's value came from the version-1 frame, the second ran now
    # with the stored typed variables (datetime, date, inf, an int-keyed dict, bytes).
    assert first == SNAPSHOT["position"][1]["loop"]["results"][0]
    assert second == ("A-2 {'approved': True} 2026-11-26 02:16:15.981228+00:00 2026-11-26 "
                      "inf {1: 'one', 2: 'two'} 7")
    # results['prepare'] kept its date; the loop gave `order` back its shadowed value
    assert done["result"]["prepared"] == "2026-11-26"
    assert done["result"]["last"] == "none yet"
    kinds = [event["kind"] for event in done["history"]]
    assert "instance_resumed" in kinds and kinds[-1] == "instance_completed"
    resumed = next(e for e in done["history"] if e["kind"] == "instance_resumed")
    assert resumed["step_id"] == "approve" and resumed["data"]["resumed_by"] == "manual"
