"""The README's main job: run the hello sample end to end through a real agent."""

from __future__ import annotations

from helpers import SAMPLES, Procctl


def test_hello_sample_runs_to_completion(procctl: Procctl) -> None:
    result = procctl.ok("run", SAMPLES / "hello.toml", "--wait", "--json")
    summary = result.json()
    assert summary["status"] == "completed"
    assert summary["result"] == {"greeting": "Hello, world!", "letters": 5}
    assert "Starting the agent" in result.err
