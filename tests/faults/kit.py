"""The fault suite's tools: real agents started, killed with SIGKILL and restarted, the
store read with sqlite3 while no agent runs, and ledgers that steps append to.

Nothing here is mocked: every agent is the installed `procctl agent run`, started with
its readiness socket (NOTIFY_SOCKET) pointing at a datagram socket of the test, and,
when a test asks for it, with PROCCTL_FAULT set so that it kills itself at an exact point.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from helpers import PROCCTL, Procctl, wait_for

CYCLES_ENV = "PROCCTL_FAULT_CYCLES"
SEED_ENV = "PROCCTL_FAULT_SEED"


class Agents:
    """Starts `procctl agent run` for one home, with or without a fault point armed."""

    def __init__(self, procctl: Procctl, logs: Path) -> None:
        self.procctl = procctl
        self.home = procctl.home
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.notify_address = f"@procctl-faults-{os.getpid()}-{uuid.uuid4().hex}"
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind("\0" + self.notify_address[1:])
        self.spawned: list[subprocess.Popen[bytes]] = []
        self.outputs: dict[int, Path] = {}

    # -- life cycle -------------------------------------------------------------------

    def env(self, fault: str | None = None, extra: dict[str, str] | None = None,
            ) -> dict[str, str]:
        env = dict(self.procctl.env)
        env.pop("PROCCTL_FAULT", None)
        env["NOTIFY_SOCKET"] = self.notify_address
        if fault:
            env["PROCCTL_FAULT"] = fault
        env.update(extra or {})
        return env

    def spawn(self, fault: str | None = None, extra_env: dict[str, str] | None = None,
              notify: bool = True) -> subprocess.Popen[bytes]:
        """Start an agent in the foreground (its output goes to a file of the test)."""
        self.drain()
        env = self.env(fault, extra_env)
        if not notify:
            env.pop("NOTIFY_SOCKET")
        output = self.logs / f"agent-{len(self.spawned) + 1}.out"
        with open(output, "wb") as out:
            proc = subprocess.Popen([PROCCTL, "agent", "run"], env=env,
                                    stdin=subprocess.DEVNULL, stdout=out,
                                    stderr=subprocess.STDOUT)
        self.spawned.append(proc)
        self.outputs[proc.pid] = output
        return proc

    def start(self, fault: str | None = None, extra_env: dict[str, str] | None = None,
              timeout: float = 30) -> subprocess.Popen[bytes]:
        proc = self.spawn(fault, extra_env)
        self.wait_ready(proc, timeout)
        return proc

    def drain(self) -> list[str]:
        """Readiness messages that arrived so far (from earlier agents)."""
        messages: list[str] = []
        self.notify.setblocking(False)
        try:
            while True:
                messages.append(self.notify.recv(4096).decode())
        except BlockingIOError:
            pass
        finally:
            self.notify.setblocking(True)
        return messages

    def wait_ready(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
        """Until the agent sends READY=1; fails if it exits first."""
        deadline = time.monotonic() + timeout
        self.notify.settimeout(0.05)
        try:
            while time.monotonic() < deadline:
                try:
                    message = self.notify.recv(4096).decode()
                except TimeoutError:
                    message = ""
                if "READY=1" in message.split("\n"):
                    return
                if proc.poll() is not None:
                    raise AssertionError(
                        f"agent {proc.pid} exited with {proc.returncode} before it was "
                        f"ready:\n{self.output(proc)}")
        finally:
            self.notify.settimeout(None)
        raise AssertionError(f"agent {proc.pid} not ready within {timeout}s:\n"
                             f"{self.output(proc)}")

    def kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL, and wait until it is gone."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def wait_exit(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> int:
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"agent {proc.pid} still runs after {timeout}s:\n"
                                 f"{self.output(proc)}") from None

    def died_by_fault(self, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
        """The agent killed itself at its fault point (SIGKILL, no clean shutdown)."""
        code = self.wait_exit(proc, timeout)
        assert code == -signal.SIGKILL, (
            f"agent exited with {code}, not by its fault point:\n{self.output(proc)}")

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 60) -> int:
        """SIGTERM: the clean stop systemd would send."""
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
        return self.wait_exit(proc, timeout)

    def output(self, proc: subprocess.Popen[bytes]) -> str:
        path = self.outputs.get(proc.pid)
        if path is None or not path.exists():
            return "(no output)"
        return path.read_text(errors="replace")[-4000:]

    def close(self) -> None:
        for proc in self.spawned:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
        self.notify.close()


# -- the store, read from the test ------------------------------------------------------


def connect(home: Path) -> sqlite3.Connection:
    db = sqlite3.connect(home / "procctl.db", timeout=30)
    db.row_factory = sqlite3.Row
    return db


def query(home: Path, sql: str, *args: Any) -> list[sqlite3.Row]:
    db = connect(home)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def integrity(home: Path) -> str:
    db = connect(home)
    try:
        return "; ".join(str(row[0]) for row in db.execute("PRAGMA integrity_check"))
    finally:
        db.close()


def statuses(home: Path, ids: Iterable[str] | None = None) -> dict[str, str]:
    rows = query(home, "SELECT id, status FROM instances")
    found = {str(r["id"]): str(r["status"]) for r in rows}
    return found if ids is None else {i: found.get(i, "missing") for i in ids}


def events(home: Path, instance_id: str, kind: str | None = None) -> list[dict[str, Any]]:
    rows = query(home, "SELECT kind, step_id, data_json FROM events WHERE instance_id = ?"
                 " ORDER BY id", instance_id)
    return [{"kind": r["kind"], "step_id": r["step_id"], "data": json.loads(r["data_json"])}
            for r in rows if kind is None or r["kind"] == kind]


def wait_status(home: Path, instance_id: str, wanted: str | tuple[str, ...],
                timeout: float = 30) -> str:
    wanted = (wanted,) if isinstance(wanted, str) else wanted

    def current() -> str | None:
        status = statuses(home, [instance_id])[instance_id]
        return status if status in wanted else None

    return str(wait_for(current, timeout=timeout,
                        message=f"instance {instance_id} to be {' or '.join(wanted)}"))


# -- ledgers ----------------------------------------------------------------------------


def ledger(path: Path) -> list[list[str]]:
    """The lines steps appended, split into their words."""
    if not path.exists():
        return []
    return [line.split(" ") for line in path.read_text().splitlines() if line]


def ledger_of(path: Path, instance_id: str) -> list[str]:
    """One instance's entries, by step name, in the order they were written."""
    return [words[1] for words in ledger(path) if words[0] == instance_id]


def ledger_task(step_id: str, resumed_by: str = "-") -> str:
    """The body of a step that appends "<instance> <step_id> <key> <resumed_by>" to the
    file named by the `ledger` param (`file.write`, append = true)."""
    content = (f"{{{{ process.instance_id }}}} {step_id} {{{{ step.idempotency_key }}}} "
               f"{resumed_by}\\n")
    return (f'task = "file.write"\n'
            f'with = {{ path = "{{{{ ledger }}}}", append = true, content = "{content}" }}\n')


def ledger_process(name: str, checkpoints: int, *, on_crash: str = "restart",
                   pause_at: str | None = None) -> str:
    """A process that appends "<instance> <step> <idempotency key> <resumed_by>" to the
    `ledger` file at every step: s1, cp1 (commit or recover block), s2, cp2, ...

    Each checkpoint goes on (continue = true) except `pause_at`. The s-steps and blocks
    use `file.write` with append = true; the values are data, never part of a script.
    Between the steps a `sleep` of `nap` seconds leaves room for a kill. The result is
    {"last": resumed_by of the last checkpoint, "resumed_by": [...], "payload": [...]}
    (each checkpoint's results[...] fields, in order).
    """
    parts = [f'[process]\nname = "{name}"\non_crash = "{on_crash}"\n\n'
             '[process.params.ledger]\ntype = "str"\n\n'
             '[process.params.nap]\ntype = "float"\ndefault = 0.0\n']
    for k in range(1, checkpoints + 2):
        previous = f"{{{{ results['cp{k - 1}'].resumed_by }}}}" if k > 1 else "-"
        parts.append(f'[[steps]]\nid = "s{k}"\n{ledger_task(f"s{k}", previous)}')
        if k == checkpoints + 1:
            break
        parts.append(f'[[steps]]\nid = "nap{k}"\ntask = "sleep"\n'
                     'with = { seconds = "{{ nap }}" }\n')
        cont = "false" if pause_at == f"cp{k}" else "true"
        parts.append(f'[[steps]]\nid = "cp{k}"\nkind = "checkpoint"\ncontinue = {cont}\n'
                     f'correlation_id = "{{{{ process.instance_id }}}}-cp{k}"\n')
        parts.append(f'[[steps.commit]]\nid = "commit-cp{k}"\n{ledger_task(f"commit-cp{k}")}')
        parts.append(f'[[steps.recover]]\nid = "recover-cp{k}"\n{ledger_task(f"recover-cp{k}")}')
    def each(field: str) -> str:
        return ", ".join(f'"{{{{ results[\'cp{k}\'].{field} }}}}"'
                         for k in range(1, checkpoints + 1))

    parts.append('[[steps]]\nid = "done"\nkind = "return"\n'
                 f'value = {{ last = "{{{{ results[\'cp{checkpoints}\'].resumed_by }}}}", '
                 f'resumed_by = [{each("resumed_by")}], payload = [{each("payload")}] }}\n')
    return "\n".join(parts)


def position(entry: str) -> float:
    """Where a ledger entry (or a checkpoint's id) stands: s1 < cp1 < s2 < cp2 ..."""
    if entry.startswith("s"):
        return 2 * (int(entry[1:]) - 1)
    return 2 * int(entry.rsplit("cp", 1)[1]) - 1


def check_ledger_order(instance_id: str, entries: list[list[str]]) -> None:
    """What the ledger of one instance may look like, given at-least-once steps between
    checkpoints and exactly-once checkpoint commits:

    - s1 follows nothing or s1 (a restart under on_crash = "restart");
    - sK (K > 1) follows the commit block of cp(K-1) (results[cp].resumed_by is not
      "recovery"), or its recover block (resumed_by "recovery", or "manual" for a retry);
    - the commit block of cpK follows sK and runs at most once;
    - the recover block of cpK follows sK, cpK's blocks, or s(K+1): never anything
      before cpK's own step (that would be resuming from an older checkpoint).
    """
    names = [words[1] for words in entries]
    for i, words in enumerate(entries):
        name, key, resumed_by = words[1], words[2], words[3]
        before = names[i - 1] if i else None
        where = f"instance {instance_id}, entry {i} ({name}) after {before}: {names}"
        assert key == f"{instance_id}:{name}:1", where
        if name == "s1":
            assert before in (None, "s1"), where
        elif name.startswith("s"):
            k = int(name[1:])
            if before == f"commit-cp{k - 1}":  # sunny day, or a pause and a signal
                assert resumed_by != "recovery", where
            else:  # after a crash (or a retry of a failed instance): recover ran
                assert before == f"recover-cp{k - 1}", where
                assert resumed_by in ("recovery", "manual"), where
        elif name.startswith("commit-cp"):
            k = int(name.split("-cp")[1])
            assert before == f"s{k}", where
            assert names.count(name) == 1, where
        else:
            k = int(name.split("-cp")[1])
            assert before in (f"s{k}", f"commit-cp{k}", f"recover-cp{k}", f"s{k + 1}"), where


def write_signal(directory: Path, name: str, document: dict[str, Any]) -> Path:
    """Drop a signal file the documented way: write NAME.tmp, rename it to NAME.json."""
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f"{name}.tmp"
    tmp.write_text(json.dumps(document))
    target = directory / f"{name}.json"
    os.rename(tmp, target)
    return target


def alive_in_group(pgid: int) -> list[int]:
    """Processes of a process group that still run (zombies do not count)."""
    found: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[0] != "Z" and int(fields[2]) == pgid:
            found.append(int(entry.name))
    return found
