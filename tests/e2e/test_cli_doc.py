"""docs/cli.md is checked against the real output: every example in it is produced here
or by the test file its comment names (tests/cli_doc.py describes the comments).

One home is built once for the module with the real `procctl` and agent (`scenario`);
each `<!-- output: procctl ... -->` block is compared with what that command printed
there: the scenario runs the commands that change something (and keeps their output),
and a read command (`list`, `show ID`, `agent status`, ...) runs when its block is
checked. What differs from run to run is masked on both sides (tests/cli_doc.py
`normalise`), and the scenario's paths, host, agent ID and PID read as the doc's own
(`/home/ada`, `web-1`, ...).
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from cli_doc import (
    CHECKED_BY,
    CLI_MD,
    Block,
    Command,
    DocError,
    blocks,
    normalise,
    parse_command,
    shown_in,
)
from helpers import PROCCTL, REPO, SAMPLES, Procctl, Result, instance_state, wait_for

from procctl.store import Store

#: the examples that no test produces; each says why in its comment
NOT_CHECKED = 1

# What the doc's examples show instead of this machine's values.
DOC_WORK = "/home/ada"  # the directory procctl runs in; the home is under it
DOC_HOST = "web-1"
DOC_AGENT_ID = "web-1-3f6c2a"
DOC_PID = "4751"
#: JSON keys whose value differs from run to run however it is written
VARYING = {"pid", "uptime_seconds", "store_commits", "bytes", "waited_seconds"}

# The definitions the examples run, beside the samples (in the working directory).
FILES = {
    # a checkpoint whose TTL runs out at once: the expired examples
    "approval.toml": """
[process]
name = "approval"

[[steps]]
id = "wait-for-answer"
kind = "checkpoint"
correlation_id = "approval-late"
ttl = "4s"

[[steps]]
id = "done"
kind = "return"
value = "late"
""",
    "leaf.toml": """
[process]
name = "leaf"

[process.params.n]
type = "int"
default = 7

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "leaf-{{ n }}"

[[steps]]
id = "done"
kind = "return"
value = "{{ results['wait'].payload }}"
""",
    "parent.toml": """
[process]
name = "parent"

[[steps]]
id = "ask"
kind = "call"
file = "leaf.toml"
params = { n = 7 }
""",
    "accept.toml": """
[process]
name = "accept"

[process.params.order]
type = "str"
default = "A-17"

[[steps]]
id = "accept"
kind = "intermediate_return"
value = { accepted = true, order = "{{ order }}" }

[[steps]]
id = "ship"
task = "log"
with = { message = "shipping {{ order }}" }
""",
    # fails at `check` until the file `ready` exists: the retry example
    "check.toml": """
[process]
name = "check"

[[steps]]
id = "save"
kind = "checkpoint"
continue = true

[[steps]]
id = "check"
task = "exec"
with = { argv = ["test", "-e", "ready"] }

[[steps]]
id = "done"
kind = "return"
value = "ok"
""",
    "order.toml": """
[process]
name = "order"

[process.params.amount]
type = "int"
default = 100

[[steps]]
id = "price"
task = "log"
with = { message = "pricing {{ amount }}" }

[[steps]]
id = "classify"
kind = "if"
condition = "amount > 1000"

[[steps.then]]
id = "gold"
kind = "set"
values = { tier = "gold" }

[[steps]]
id = "notify"
task = "log"
with = { message = "tier {{ tier }}" }
""",
    "bad.toml": """
# a task's name mistyped
[process]
name = "bad"

[[steps]]
id = "a"
task = "lg"
with = { message = "hi" }
""",
}


@dataclass
class Scenario:
    """The home the examples ran in, and what the commands that change it printed."""

    procctl: Procctl
    work: Path
    values: dict[str, str] = field(default_factory=dict)  # {name} in a comment
    ran: dict[str, Result] = field(default_factory=dict)  # by the comment's command
    subs: dict[str, str] = field(default_factory=dict)  # this machine's -> the doc's

    def argv(self, command: Command) -> list[str]:
        return [arg.format(**self.values) for arg in command.args]

    def env(self, command: Command) -> dict[str, str]:
        return {"COLUMNS": "80", **{k: v.format(**self.values)
                                    for k, v in command.env.items()}}

    def run(self, text: str) -> Result:
        """Run a command as a comment names it (`; exit N`: its exit code), and keep its
        output for that comment."""
        command = _command(text)
        result = execute(self, command)
        assert result.code == command.exit, str(result)
        self.ran[_key(command)] = result
        return result

    def serve(self, text: str, lines: int) -> Result:
        """Run a server command until it has printed `lines` lines and answers on its
        port (the last number after `:` in them), then Ctrl-C it, and keep its output
        for its comment."""
        command = _command(text)
        proc = subprocess.Popen(
            [PROCCTL, *self.argv(command)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL, cwd=self.work, text=True,
            env={**self.procctl.env, **self.env(command), "PYTHONUNBUFFERED": "1"})
        try:
            assert proc.stdout is not None
            out = "".join(proc.stdout.readline() for _ in range(lines))
            port = int(re.findall(r":(\d+)", out)[-1])
            wait_for(lambda: _answers(port), message=f"`{text}` to answer")
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        result = Result(self.argv(command), proc.returncode, out + rest, err)
        assert result.code == command.exit, str(result)
        self.ran[_key(command)] = result
        return result


def _answers(port: int) -> bool:
    """Whether an HTTP server answers on the port (its socket listens before it does)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except urllib.error.HTTPError:  # a refusal (no token) is an answer
        return True
    except OSError:
        return False


def _command(text: str) -> Command:
    return parse_command(text, "the scenario")


def _key(command: Command) -> str:
    """The same command shown the same way (streams, terminal) has the same key."""
    return " ".join([*(f"{k}={v}" for k, v in command.env.items()), *command.args,
                     command.stream, str(command.tty)])


def _reads_only(args: list[str]) -> bool:
    """A command that changes nothing: its block may run it when it is checked."""
    if "--help" in args:
        return True
    if args[:2] in (["agent", "status"], ["config", "show"]):
        return True
    if args and args[0] == "graph":
        return not {"-o", "--output"} & set(args)
    return bool(args) and args[0] in {"list", "list-paused", "show", "explain", "signals",
                                      "agents", "validate"}


def _instance(result: Result) -> str:
    return str(result.json()["instance_id"])


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    work = tmp_path_factory.mktemp("clidoc") / "ada"
    shutil.copytree(SAMPLES, work / "samples")
    for name, text in FILES.items():
        (work / name).write_text(text, encoding="utf-8")
    procctl = Procctl(work / ".local" / "state" / "procctl")
    scene = Scenario(procctl, work, values={"home": str(procctl.home)})
    try:
        _build(scene)
        yield scene
    finally:
        procctl.stop_agent()


def _build(scene: Scenario) -> None:
    procctl, run, values = scene.procctl, scene.run, scene.values

    # a checkpoint that expires while no agent runs: purge-expired, then retry refused
    late = run("procctl run approval.toml --wait --json")
    values["late"] = _instance(late)
    procctl.ok("agent", "stop")
    assert instance_state(procctl, values["late"])[0] == "paused", \
        "the agent expired the checkpoint before it stopped: a longer ttl in approval.toml"
    run("PROCCTL_HOME={home} procctl agent status --json; exit 4")
    due = datetime.fromisoformat(late.json()["checkpoint"]["expires_at"])
    wait_for(lambda: datetime.now(due.tzinfo) > due, timeout=10, message="the TTL to run out")
    run("procctl purge-expired --json")
    procctl.ok("agent", "start")
    run("procctl retry {late} >/dev/null; exit 8")

    values["hello"] = _instance(run("procctl run samples/hello.toml -p who=Ada --wait --json"))
    run("procctl run samples/approval.toml -p order=D-1 -p amount=100 --wait --json")
    run("procctl run samples/hello.toml --wait")
    run("procctl run samples/approval.toml --wait -p order=A-17 -p amount=1200")
    values["approved"] = _instance(
        run("procctl run samples/approval.toml -p order=B-1 --wait --json"))
    run("procctl resume --correlation-id approval-B-1 --data approved=true --data by=ada "
        "--signal-id sig-77 --json")
    run("procctl run parent.toml --wait")
    run("procctl run accept.toml --wait")
    values["check"] = _instance(run("procctl run check.toml --wait --json; exit 1"))
    (scene.work / "ready").touch()
    run("procctl retry {check}")
    run("procctl graph samples/approval.toml --output approval.md")
    run("procctl run samples/orders.toml --json")
    run("procctl run samples/orders.toml 2>/dev/null")
    wait_for(lambda: not procctl.ok("list", "--status", "running", "--json").json(),
             message="the orders instances to end")

    # Two instances whose IDs share their first 4 characters: 1 in 65,536 by chance,
    # so the test gives two completed ones the same start (the store is otherwise real).
    values["prefix"] = "5f42"
    with sqlite3.connect(procctl.home / "procctl.db", timeout=10) as db:
        for name in ("hello", "approved"):
            old = values[name]
            values[name] = new = "5f42" + old[4:]
            db.execute("UPDATE instances SET id = ? WHERE id = ?", (new, old))
            db.execute("UPDATE events SET instance_id = ? WHERE instance_id = ?", (new, old))
    db.close()

    # the agents sharing the store: this one, one that lost its lease, one stopped
    for agent_id, host, pid, lease in (("web-2-81d07c", "web-2", 9120, -12.0),
                                       ("web-1-c09e1f", DOC_HOST, 4022, 10.0)):
        store = Store(procctl.home / "procctl.db")
        try:
            store.register_agent(agent_id, host=host, pool="default", home=str(procctl.home),
                                 pid=pid, version="0.1.0", lease_seconds=lease)
            if lease > 0:
                store.release_agent()
        finally:
            store.close()

    # the web view, until Ctrl-C: its URL has a free port and a new token each time
    served = scene.serve("procctl ui 2>/dev/null", lines=2)
    url = re.search(r"127\.0\.0\.1:(\d+)/\?token=(\S+)", served.out)
    assert url, str(served)

    agent_id = (procctl.home / "agent.id").read_text().strip()
    pid = procctl.agent_pid()
    scene.subs = {str(scene.work): DOC_WORK, agent_id: DOC_AGENT_ID, str(pid): DOC_PID,
                  f":{url[1]}/": ":40123/", f"token={url[2]}": "token=Hq0c..."}


# -- comparing a block with the output ---------------------------------------------------

def execute(scene: Scenario, command: Command) -> Result:
    """Run `command` in the scenario: piped, or on an 80-column terminal (`; tty`, and
    for a block that shows both streams, interleaved as a terminal shows them: then
    everything is in `out`)."""
    argv, env = scene.argv(command), scene.env(command)
    if command.tty or command.stream == "both":
        return _on_terminal(scene, argv, env, merged=command.stream == "both")
    return scene.procctl(*argv, env=env, cwd=scene.work)


def _on_terminal(scene: Scenario, argv: list[str], env: dict[str, str],
                 merged: bool) -> Result:
    """What the command writes on a dumb pseudo-terminal (standard error too, when
    `merged`)."""
    leader, follower = pty.openpty()
    try:
        proc = subprocess.Popen([PROCCTL, *argv], stdout=follower,
                                stderr=follower if merged else subprocess.PIPE,
                                stdin=subprocess.DEVNULL, cwd=scene.work,
                                env={**scene.procctl.env, "LINES": "50", **env})
        os.close(follower)
        chunks = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if not select.select([leader], [], [], 1)[0]:
                continue
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # the other end is closed: all was read
                break
            if not chunk:
                break
            chunks.append(chunk)
        err = proc.stderr.read().decode() if proc.stderr else ""
        code = proc.wait(timeout=60)
    finally:
        os.close(leader)
    return Result(argv, code, b"".join(chunks).decode().replace("\r\n", "\n"), err)


def output_of(scene: Scenario, block: Block) -> Result:
    command = block.command
    assert command is not None
    kept = scene.ran.get(_key(command))
    if kept is not None:
        return kept
    assert _reads_only(command.args), (
        f"docs/cli.md:{block.line}: `{block.annotation}` changes the home: run it in the "
        "scenario (tests/e2e/test_cli_doc.py _build) so that its output is kept")
    return execute(scene, command)


def _masked(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "<N>" if k in VARYING and v is not None else _masked(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v) for v in value]
    return value


def _json_text(value: Any) -> str:
    """One layout for the doc's JSON and the real one, keys in their order, masked."""
    return normalise(json.dumps(_masked(value), indent=1, ensure_ascii=False))


def _substituted(text: str, subs: dict[str, str]) -> str:
    """This machine's values as the doc shows them (longest first; PIDs, host and agent
    IDs as whole words)."""
    for real, shown in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        text = re.sub(rf"(?<![\w-]){re.escape(real)}(?![\w-])", shown, text) \
            if re.fullmatch(r"[\w-]+", real) else text.replace(real, shown)
    return re.sub(rf"(?<![\w-]){re.escape(socket.gethostname())}(?![\w-])", DOC_HOST, text)


def compare(scene: Scenario, block: Block, result: Result) -> None:
    """Assert that `block` shows `result`, masked; the message has the real output."""
    command = block.command
    assert command is not None
    where = f"docs/cli.md:{block.line} `{block.annotation}`"
    assert result.code == command.exit, f"{where}: exit code\n{result}"
    text = result.err if command.stream == "err" else result.out
    real = _substituted(text, scene.subs)
    if block.info == "json":
        body = block.body.strip()
        fragment = body.startswith('"')
        shown = json.loads("{" + body + "}" if fragment else body)
        actual = json.loads(real)
        if fragment or command.without:
            actual = {k: v for k, v in actual.items()
                      if k not in command.without and (not fragment or k in shown)}
        assert _json_text(shown) == _json_text(actual), f"{where}:\n{real}"
        return
    expected = normalise(block.body).splitlines()
    if expected and expected[0].startswith("$ "):
        ran = "$ " + shlex.join(["procctl", *scene.argv(command)])
        assert normalise(expected[0]) == normalise(_substituted(ran, scene.subs)), \
            f"{where}: the block's $ line is not its command: {ran}"
        expected = expected[1:]
    actual_lines = normalise(real).splitlines()
    assert shown_in(expected, actual_lines), f"{where}:\n{real}"


# -- the tests --------------------------------------------------------------------------

def _all_blocks() -> list[Block]:
    try:
        return blocks(CLI_MD.read_text(encoding="utf-8"))
    except DocError:
        return []  # test_every_block_says_how_it_is_checked names the problem


ALL = _all_blocks()
RUN = [b for b in ALL if b.kind == "run"]


def test_every_block_says_how_it_is_checked() -> None:
    found = blocks(CLI_MD.read_text(encoding="utf-8"))  # raises DocError for a bad one
    kinds = {kind: [b for b in found if b.kind == kind]
             for kind in ("run", "elsewhere", "not-checked", "synopsis")}
    not_checked = "\n".join(f"  {b.name}: {b.why}" for b in kinds["not-checked"])
    assert len(kinds["not-checked"]) == NOT_CHECKED, (
        f"examples not checked by any test:\n{not_checked}\n(NOT_CHECKED says "
        f"{NOT_CHECKED}: produce a new example in a test rather than raise it)")
    assert len(kinds["run"]) >= 20, {k: len(v) for k, v in kinds.items()}


@pytest.mark.parametrize("block", [b for b in ALL if b.kind == "elsewhere"],
                         ids=lambda b: f"{b.name}-{b.group.replace(' ', '-')}")
def test_a_block_checked_elsewhere_is_read_by_its_test(block: Block) -> None:
    group, name = block.group.split()
    test_file = REPO / CHECKED_BY[group]
    text = test_file.read_text(encoding="utf-8")
    assert "<!-- output: " in text and f'"{name}"' in text, (
        f"docs/cli.md:{block.line} says {CHECKED_BY[group]} checks `{block.group}`, "
        "and that file does not read it")


@pytest.mark.parametrize("block", RUN, ids=lambda b: f"{b.name}-{'-'.join(b.command.args[:2])}"
                         if b.command else b.name)
def test_the_example_is_the_real_output(scenario: Scenario, block: Block) -> None:
    compare(scenario, block, output_of(scenario, block))


def test_the_comparison_can_fail(scenario: Scenario) -> None:
    """A block whose text differs from the output, or a JSON block with a key too many,
    does not pass."""
    command = _command("procctl list --status completed --json")
    wrong = Block(1, "", "Error: nothing\n", "run", command, annotation="test")
    result = output_of(scenario, wrong)
    with pytest.raises(AssertionError):
        compare(scenario, wrong, result)
    extra = Block(1, "json", json.dumps([*result.json(), {"instance_id": "x"}]), "run",
                  command, annotation="test")
    with pytest.raises(AssertionError):
        compare(scenario, extra, result)
    same = Block(1, "json", result.out, "run", command, annotation="test")
    compare(scenario, same, result)
