"""`StoreWorker.call` carries the store method's signature: strict mypy flags a call
with a wrong argument, a misspelt keyword or a result used as the wrong type."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
BIN = Path(sys.executable).parent

PROBE = '''
from procctl.agent.store_worker import StoreWorker
from procctl.store import Store


async def good(worker: StoreWorker, store: Store) -> str:
    record = await worker.call(store.get_instance, "i1")
    await worker.call(store.finish_instance, "i1", "failed", error_json="{}")
    return record.status


async def bad(worker: StoreWorker, store: Store) -> None:
    await worker.call(store.get_instance, 1)
    await worker.call(store.finish_instance, "i1", "failed", eror_json="{}")
    count: int = await worker.call(store.get_instance, "i1")
'''


@pytest.mark.timeout(300)
def test_mypy_checks_the_arguments_of_a_store_call(tmp_path: Path) -> None:
    package = tmp_path / "procctl"
    package.mkdir()
    for name in ("cli", "agent", "store"):
        (package / name).symlink_to(REPO / name, target_is_directory=True)
    (tmp_path / "probe.py").write_text(PROBE)
    proc = subprocess.run(
        [str(BIN / "mypy"), "--config-file", str(REPO / "pyproject.toml"),
         "--cache-dir", str(tmp_path / ".mypy_cache"), "--follow-imports", "silent",
         "probe.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=280,
    )
    lines = [line for line in proc.stdout.splitlines() if ": error:" in line]
    assert [line.split(":")[1] for line in lines] == ["13", "14", "15"], proc.stdout
    assert '"int"; expected "str"' in lines[0]
    assert 'Unexpected keyword argument "eror_json"' in lines[1]
    assert "InstanceRecord" in lines[2]
