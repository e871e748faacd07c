"""Every sample in samples/ runs to completion through a real agent, with no params."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import SAMPLES, Procctl

SAMPLE_FILES = sorted(SAMPLES.glob("*.toml"))

ORDERS_REPORT = "1. apple x3 = 120\n2. pear x2 = 110\n3. plum x10 = 150\n"

#: The result of each sample run with its defaults, where it is deterministic. A sample
#: missing here must still complete with a non-null result.
EXPECTED: dict[str, Any] = {
    "hello.toml": {"greeting": "Hello, world!", "letters": 5},
    "orders.toml": {"orders": 3, "total_cents": 380, "size": "large",
                    "report": ORDERS_REPORT},
}


def run_sample(procctl: Procctl, path: Path, *args: str) -> dict[str, Any]:
    result = procctl("run", path, "--wait", "--json", *args)
    assert result.code == 0, str(result)
    summary: dict[str, Any] = result.json()
    assert summary["status"] == "completed", summary
    return summary


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_runs_to_completion(procctl: Procctl, path: Path) -> None:
    summary = run_sample(procctl, path)
    assert summary["error"] is None
    assert summary["result"] is not None
    if path.name in EXPECTED:
        assert summary["result"] == EXPECTED[path.name]


def test_orders_sample_takes_its_params(procctl: Procctl) -> None:
    summary = run_sample(procctl, SAMPLES / "orders.toml", "-p", "threshold=1000")
    assert summary["result"] == {**EXPECTED["orders.toml"], "size": "small"}

    summary = run_sample(procctl, SAMPLES / "orders.toml",
                         "-p", 'orders=[{"sku": "fig; rm -rf /", "qty": 4, "price": 90}]')
    assert summary["result"] == {"orders": 1, "total_cents": 360, "size": "large",
                                 "report": "1. fig; rm -rf / x4 = 360\n"}
