"""The command line as a user meets it: global options after the command, help that
says NAME=VALUE, gives whole summaries and ends with an example, usage errors as one
`Error:` line and a `Hint:`, shell completion, `config set`'s did-you-mean, what
`agent stop` waits for, and --json for agent start, agent stop and config set."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from pathlib import Path

from helpers import PROCCTL, REPO, SAMPLES, Procctl, show_json, wait_for

from procctl.cli.app import COMMANDS
from procctl.cli.commands.agent import waiting_text
from procctl.cli.help_examples import EXAMPLES
from procctl.store import Store

SLEEPER = """\
[process]
name = "ergonomics-sleeper"
version = "1"

[[steps]]
id = "nap"
kind = "task"
task = "sleep"
with = { seconds = 30 }
"""


def _store_with(home: Path, instance_id: str) -> None:
    """A home whose store holds one (running) instance, made with the store API."""
    home.mkdir(mode=0o700)
    store = Store(home / "procctl.db")
    try:
        store.put_definition("b" * 64, "elsewhere", "1", None, "[process]\n")
        store.create_instance(instance_id, "b" * 64, "elsewhere", "1", "{}", "{}")
    finally:
        store.close()


def test_global_options_work_after_the_command(procctl: Procctl, tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    _store_with(other, "after-0001")

    listed, shown, missing, set_there = procctl.many(
        ("list", "--home", other),
        ("show", "after-0001", "--json", "--home", other),
        ("show", "no-such-instance", "--home", other, "--debug"),
        ("config", "set", "pool", "after", "--home", other))

    assert listed.code == 0, str(listed)
    assert "after-0001" in listed.out, str(listed)  # the other home's, not PROCCTL_HOME's
    assert shown.code == 0 and shown.json()["instance_id"] == "after-0001", str(shown)
    assert missing.code == 5, str(missing)
    assert missing.err.startswith("Error: "), str(missing)
    assert "Traceback" in missing.err, str(missing)  # --debug after the command
    assert set_there.code == 0, str(set_there)
    assert 'pool = "after"' in (other / "config.toml").read_text(encoding="utf-8")
    assert not (procctl.home / "config.toml").exists()

    # after the command, --home wins over PROCCTL_HOME and over a --home before it
    before, grouped = procctl.many(
        ("--home", tmp_path / "nowhere", "list", "--home", other),
        ("config", "--home", other, "show", "--json"))
    assert before.code == 0 and "after-0001" in before.out, str(before)
    assert grouped.code == 0 and grouped.json()["pool"] == "after", str(grouped)
    # and without it, the command reads PROCCTL_HOME's home (none here)
    plain = procctl("list")
    assert "after-0001" not in plain.out, str(plain)
    assert str(procctl.home) in plain.out, str(plain)


def test_help_says_name_value_whole_summaries_and_an_example(procctl: Procctl) -> None:
    """At 80 columns (tests/unit/test_help_examples.py checks every command's help
    in-process)."""
    root, run, resume, stop = procctl.many(
        ("--help",), ("run", "--help"), ("resume", "--help"), ("agent", "stop", "--help"),
        env={"COLUMNS": "80"})
    assert root.code == 0, str(root)
    listed = " ".join(root.out.split("Commands:")[1].split())
    for entry in COMMANDS:
        assert f"{entry.name} {entry.help}" in listed, f"{entry.name} cut short:\n{root.out}"
    assert "..." not in root.out.split("Commands:")[1], root.out
    assert "--install-completion" in root.out, root.out

    # as docs/cli.md (Help) shows them
    assert ("  -w, --wait              Follow the instance and print its result.\n"
            "  -p, --param NAME=VALUE  A param: its name and value (repeatable).\n"
            in run.out), str(run)
    assert run.out.endswith("\n\n  Example:\n    procctl run samples/approval.toml --wait "
                            "-p order=A-17 -p amount=1200\n"), str(run)
    assert "-d, --data NAME=VALUE" in resume.out, str(resume)
    for path, shown in (("run", run), ("resume", resume), ("agent stop", stop)):
        assert "list[str]" not in shown.out, str(shown)
        assert "--home" in shown.out and "--debug" in shown.out, str(shown)
        # the help ends with the command's example
        tail = [line.strip() for line in shown.out.rstrip().splitlines()[-2:]]
        assert tail == ["Example:", EXAMPLES[path][0]], f"{path}:\n{shown.out}"


def test_usage_errors_are_one_error_line_and_a_hint(procctl: Procctl) -> None:
    unknown, missing, bad, no_command, bad_choice = procctl.many(
        ("list", "--colour", "red"),
        ("run",),
        ("list", "--limit", "many"),
        ("lsit",),
        ("graph", SAMPLES / "hello.toml", "--format", "png"))
    for result in (unknown, missing, bad, no_command, bad_choice):
        assert result.code == 2, str(result)
        assert result.out == "", str(result)
        error, hint = result.err.splitlines()  # exactly two lines: no usage block
        assert error.startswith("Error: "), str(result)
        assert hint.startswith("Hint: "), str(result)
    assert unknown.err.splitlines() == [
        "Error: No such option: --colour",
        "Hint: usage: procctl list [OPTIONS] (more: procctl list --help)"]
    assert "Missing argument 'file'" in missing.err, str(missing)
    assert "procctl run [OPTIONS] {file}" in missing.err, str(missing)
    assert "--limit" in bad.err, str(bad)
    assert "Did you mean 'list'?" in no_command.err, str(no_command)
    # an option without its value names the command in the hint too
    assert procctl("resume", "-c").err.splitlines() == [
        "Error: Option '-c' requires an argument.",
        "Hint: usage: procctl resume [OPTIONS] (more: procctl resume --help)"]
    assert "'png' is not one of tree, mermaid" in bad_choice.err, str(bad_choice)

    # `procctl` alone still prints the help (exit code 2), and --help is not an error
    alone, helped = procctl.many((), ("list", "--help"))
    assert alone.code == 2 and "Commands:" in alone.err, str(alone)
    assert helped.code == 0 and helped.err == "", str(helped)


def test_install_completion_installs_typers_completion(procctl: Procctl,
                                                       tmp_path: Path) -> None:
    user = tmp_path / "user"
    user.mkdir()
    installed = procctl("--install-completion", "bash",
                        env={"HOME": str(user), "SHELL": "/bin/bash"})
    assert installed.code == 0, str(installed)
    script = user / ".bash_completions" / "procctl.sh"
    assert "_PROCCTL_COMPLETE=complete_bash" in script.read_text(encoding="utf-8")
    assert str(script) in (user / ".bashrc").read_text(encoding="utf-8")

    # what the installed script asks procctl: the commands, and a command's options
    # (its module loaded for it)
    commands, options = (
        procctl(env={"_PROCCTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
                     "COMP_CWORD": "1" if words.count(" ") == 1 else "2"})
        for words in ("procctl li", "procctl list --st"))
    assert commands.out.split() == ["list", "list-paused"], str(commands)
    assert options.out.split() == ["--status"], str(options)


def test_config_set_suggests_the_setting_meant_and_prints_json(procctl: Procctl) -> None:
    typo, far, as_json = procctl.many(
        ("config", "set", "shutdown_gace", "30s"),
        ("config", "set", "colour", "red"),
        ("config", "set", "shutdown_grace", "30s", "--json"))
    assert typo.code == 2, str(typo)
    assert typo.err.splitlines() == [
        "Error: unknown setting 'shutdown_gace'",
        "Hint: did you mean 'shutdown_grace'? procctl config show lists the settings"]
    assert far.code == 2 and "Hint: known settings: signals_dir," in far.err, str(far)
    assert procctl.ok("config", "set", "shutdown_grace", "30s").out == (
        "shutdown_grace = '30s'\n")  # as docs/cli.md shows it
    assert as_json.code == 0, str(as_json)
    assert as_json.json() == {"key": "shutdown_grace", "value": "30s",
                              "file": str(procctl.home / "config.toml")}
    assert procctl.ok("config", "show", "--json").json()["shutdown_grace"] == "30s"


def test_agent_start_and_stop_in_json(procctl: Procctl) -> None:
    started = procctl.ok("agent", "start", "--json").json()
    assert started["started"] is True, started
    assert started["pid"] == procctl.agent_pid(), started
    assert started["home"] == str(procctl.home), started
    assert started["state"] in ("starting", "ready"), started
    again = procctl.ok("agent", "start", "--json").json()
    assert (again["started"], again["pid"]) == (False, started["pid"]), again

    stopped = procctl("agent", "stop", "--json")
    assert stopped.code == 0, str(stopped)
    data = stopped.json()
    assert (data["stopped"], data["pid"], data["instances_running"]) == (
        True, started["pid"], 0), data
    assert "Waiting for" not in stopped.err, str(stopped)  # nothing to wait for
    assert not (procctl.home / "agent.sock").exists()

    none = procctl("agent", "stop", "--json")
    assert none.code == 0, str(none)
    assert none.json() == {"stopped": False, "running": False, "home": str(procctl.home)}


def test_agent_stop_says_what_it_waits_for(procctl: Procctl, tmp_path: Path) -> None:
    procctl.ok("config", "set", "shutdown_grace", "1s")
    definition = tmp_path / "sleeper.toml"
    definition.write_text(SLEEPER, encoding="utf-8")
    procctl.ok("run", definition)
    pid = procctl.agent_pid()
    wait_for(lambda: procctl.ok("agent", "status", "--json").json()["instances_running"],
             message="the sleeper to run")

    stopped = procctl.ok("agent", "stop")
    assert stopped.out == f"Stopped agent pid {pid}\n", str(stopped)
    # said while it waited, on standard error
    assert stopped.err.splitlines() == [
        "Waiting for 1 running instance to finish (shutdown_grace 1s)..."], str(stopped)
    assert procctl("agent", "status").code == 4  # it has stopped
    # the line docs/cli.md shows, for more instances
    assert waiting_text(3, "10s") == (
        "Waiting for 3 running instances to finish (shutdown_grace 10s)...")
    plain = procctl("agent", "stop")
    assert plain.out == f"No agent is running for home {procctl.home}\n", str(plain)


def test_run_points_at_follow_and_ctrl_c_leaves_the_instance_running(
        shared_procctl: Procctl, tmp_path: Path) -> None:
    started = shared_procctl("run", SAMPLES / "hello.toml")
    assert started.code == 0, str(started)
    instance_id = started.out.split()[1]
    assert started.err.endswith(f"Follow it with: procctl follow {instance_id}\n"), str(started)

    definition = tmp_path / "napper.toml"
    definition.write_text(SLEEPER.replace("ergonomics-sleeper", "ergonomics-napper")
                          .replace("seconds = 30", "seconds = 2"), encoding="utf-8")
    following = subprocess.Popen(
        [PROCCTL, "run", str(definition), "--wait"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=shared_procctl.env)
    try:
        assert following.stdout is not None
        header = following.stdout.readline()  # "ergonomics-napper instance ID"
        assert header.startswith("ergonomics-napper instance "), header
        instance_id = header.split()[-1]
        following.send_signal(signal.SIGINT)
        out, err = following.communicate(timeout=30)
    finally:
        following.kill()
    assert following.returncode == 130, (out, err)
    assert err.splitlines()[-1] == (f"Stopped following; instance {instance_id} goes on. "
                                    f"Follow it again with: procctl follow {instance_id}")
    # it went on: it completes without the command that started it
    waited = shared_procctl("wait", instance_id, "--timeout", "30")
    assert waited.code == 0, str(waited)
    assert show_json(shared_procctl, instance_id)["status"] == "completed"


#: docs/cli.md's `<!-- output: ergonomics NAME -->` blocks: which stream each shows
DOC_STREAMS = {"run-help": "out", "unknown-option": "err", "config-typo": "err",
               "config-set": "out"}
_DOC_BLOCK = re.compile(r"<!-- output: ergonomics (?P<name>[a-z-]+) -->\n```\n"
                        r"\$ (?P<command>[^\n]*)\n(?P<body>.*?)```", re.DOTALL)


def _shown_in(expected: list[str], actual: list[str]) -> bool:
    """Whether `actual` is `expected`, where a `...` line of `expected` stands for any
    lines (none included)."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(_shown_in(expected[1:], actual[start:])
                   for start in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and _shown_in(expected[1:], actual[1:])


def test_the_docs_show_the_real_output(procctl: Procctl) -> None:
    """docs/cli.md's examples of this file's features are what procctl prints (at 80
    columns)."""
    blocks = {m["name"]: m for m in _DOC_BLOCK.finditer(
        (REPO / "docs" / "cli.md").read_text(encoding="utf-8"))}
    assert sorted(blocks) == sorted(DOC_STREAMS)
    results = procctl.many(*[shlex.split(blocks[name]["command"])[1:] for name in DOC_STREAMS],
                           env={"COLUMNS": "80"})
    for (name, stream), result in zip(DOC_STREAMS.items(), results, strict=True):
        shown = result.out if stream == "out" else result.err
        expected = blocks[name]["body"].splitlines()
        assert _shown_in(expected, shown.splitlines()), f"docs/cli.md {name}:\n{result}"
    assert not _shown_in(["a", "...", "c"], ["a", "b"])  # the comparison can fail


LOOPS = """\
[process]
name = "ergonomics-loops"
version = "1"

[[steps]]
id = "each-order"
kind = "foreach"
items = "{{ ['A-1', 'A-2'] }}"
as = "order"

[[steps.body]]
id = "charge"
kind = "task"
task = "log"
with = { message = "charging {{ order }}" }
"""


def test_the_progress_lines_of_a_loop_show_the_iteration(shared_procctl: Procctl,
                                                         tmp_path: Path) -> None:
    definition = tmp_path / "loops.toml"
    definition.write_text(LOOPS, encoding="utf-8")
    ran = shared_procctl.ok("run", definition, "--wait")
    steps = [line.strip() for line in ran.out.splitlines() if line.startswith("  ✓")]
    assert [re.sub(r" [0-9.]+s$", "", line) for line in steps] == [
        "✓ charge (iteration 1)", "✓ charge (iteration 2)", "✓ each-order"], str(ran)
