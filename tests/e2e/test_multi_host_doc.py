"""docs/multi-host.md's trial, run for real: two homes (two agents) on one PostgreSQL
server, as the doc shows it. Every command the doc shows with its output is run here
and the lines that matter are compared (not PIDs, IDs or times): the store_url setting
(and a password refused), the store with no schema yet, two agents started, `agents`
and `agent status`, a process paused on A and resumed by a signal file dropped on B,
`procctl resume` on B, a definition of another pool refused, and a `kill -9` of A whose
running instance B takes over from its checkpoint.

The server is the test's throwaway one (`pg_url`, a Unix socket) instead of the doc's
`postgresql://procctl@localhost/procctl`; the doc's count.toml and report.toml are read
from the doc.
"""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path
from typing import Any

from helpers import REPO, SAMPLES, Procctl, Result, unique_key, wait_for
from pg_server import PgServer

from procctl.store import StoreContract, open_store

DOC = REPO / "docs" / "multi-host.md"
AGENTS_HEADER = ["AGENT", "HOST", "POOL", "PID", "STATE", "LEASE", "INSTANCES"]
#: the store the doc's trial used, in place of the test's throwaway one
DOC_URL = "postgresql://procctl@localhost/procctl"
ROUNDS = 6


def doc_toml(name: str) -> str:
    """The doc's ```toml block that starts with `# <name>:`."""
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if block.startswith(f"# {name}:")]
    assert len(found) == 1, f"docs/multi-host.md has {len(found)} toml blocks for {name}"
    return found[0]


def in_doc(output: str, url: str | None = None) -> None:
    """Each line of `output` (the test's store URL written as the doc's) is in the doc,
    as the doc pastes it (without trailing blanks)."""
    text = DOC.read_text(encoding="utf-8")
    for line in output.splitlines():
        line = (line if url is None else line.replace(url, DOC_URL)).rstrip()
        assert line in text, f"docs/multi-host.md does not show: {line}"


def agents_table(result: Result) -> dict[str, list[str]]:
    """`procctl agents`' rows by agent ID: the cells after the ID, with `lease lost`
    as one cell."""
    lines = result.out.splitlines()
    assert lines[0].split() == AGENTS_HEADER, result.out
    rows = {}
    for line in lines[1:]:
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def status_rows(result: Result) -> dict[str, str]:
    """`procctl agent status`' rows: label -> value (a wrapped value joined again)."""
    rows: dict[str, str] = {}
    label = ""
    for line in result.out.splitlines():
        if not line.strip():
            continue
        if line.startswith(" "):  # the value of the row above, wrapped
            rows[label] += " " + line.strip()
            continue
        label, value = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        rows[label] = value.strip()
    return rows


def started_pid(result: Result, home: Path) -> int:
    match = re.fullmatch(rf"Started agent pid (\d+) for home {re.escape(str(home))}\n",
                         result.out)
    assert match, str(result)
    return int(match.group(1))


def drop_signal(directory: Path, name: str, document: dict[str, Any]) -> None:
    """As the doc does it: write NAME.tmp, then rename it to NAME.json."""
    temporary = directory / f"{name}.tmp"
    temporary.write_text(json.dumps(document), encoding="utf-8")
    temporary.rename(directory / f"{name}.json")


def read_store(url: str, tmp_path: Path) -> StoreContract:
    return open_store(tmp_path / "unused.db", url=url, read_only=True)


def kinds(store: StoreContract, instance_id: str) -> list[str]:
    return [event.kind for event in store.events(instance_id)]


def test_the_trial_in_multi_host_md(tmp_path: Path, pg_url: str) -> None:
    a, b = Procctl(tmp_path / "trial" / "a"), Procctl(tmp_path / "trial" / "b")
    for host in (a, b):
        setting = host.ok("config", "set", "store_url", pg_url)
        assert setting.out == f"store_url = '{pg_url}'\n", str(setting)
        assert setting.err == ("A running agent uses it after: procctl agent stop && "
                               "procctl agent start\n"), str(setting)
        assert host.ok("config", "set", "lease", "3s").out == "lease = '3s'\n"
        in_doc(setting.out + setting.err, pg_url)
    refused = a("config", "set", "store_url",
                "postgresql://procctl:s3cret@localhost/procctl")
    assert (refused.code, refused.err) == (2, (
        "Error: setting store_url: it holds a password; passwords go in ~/.pgpass, "
        "PGPASSFILE or PGPASSWORD, never in config.toml\n")), str(refused)
    assert a.ok("config", "show", "--json").json()["store_url"] == pg_url  # not written
    in_doc(refused.err)

    blank = a("agents")  # no agent has created the schema yet
    assert (blank.code, blank.err) == (6, (
        f"Error: the store {pg_url} holds no procctl schema\n"
        "Hint: start an agent with this store_url first\n")), str(blank)
    in_doc(blank.err, pg_url)

    pids: list[int] = []
    try:
        pids.append(started_pid(a.ok("agent", "start"), a.home))
        pids.append(started_pid(b.ok("agent", "start"), b.home))
        id_a = (a.home / "agent.id").read_text().strip()
        id_b = (b.home / "agent.id").read_text().strip()

        rows = agents_table(b.ok("agents"))
        assert set(rows) == {id_a, id_b}, rows
        for agent_id, pid in ((id_a, pids[0]), (id_b, pids[1])):
            assert rows[agent_id][1:4] == ["default", str(pid), "alive"], rows
            assert re.fullmatch(r"in \ds", rows[agent_id][4]), rows
            assert rows[agent_id][5] == "0", rows

        status = status_rows(a.ok("agent", "status"))
        assert status["Agent"] == "ready", status
        assert (status["Agent ID"], status["Pool"], status["Store"]) == (
            id_a, "default", pg_url), status
        assert re.fullmatch(r"3s, until \S+ \S+ \(in \ds\)", status["Lease"]), status

        # A process paused on A ...
        paused = a.ok("run", SAMPLES / "approval.toml", "--wait", "-p", "order=A-17",
                      "-p", "amount=1200")
        assert paused.out.splitlines()[-2:] == [
            "paused at checkpoint wait-for-answer, correlation ID approval-A-17",
            "Resume it with: procctl resume --correlation-id approval-A-17"], str(paused)
        in_doc("\n".join(paused.out.splitlines()[-2:]))
        instance_id = paused.out.split()[2]
        waiting = b.ok("list-paused").out.splitlines()
        assert waiting[1].split()[:4] == ["approval-A-17", instance_id, "approval",
                                          "wait-for-answer"], waiting
        # ... resumed by a signal file dropped on B
        drop_signal(b.home / "signals", "answer",
                    {"correlation_id": "approval-A-17",
                     "payload": {"approved": True, "by": "ada"}})
        wait_for(lambda: a.ok("show", instance_id, "--json").json()["status"] == "completed",
                 timeout=20, message="the approval to complete")
        shown = a.ok("show", instance_id)
        assert re.search(r"^Status +completed", shown.out, re.M), shown.out
        shown_json = a.ok("show", instance_id, "--json").json()
        assert shown_json["result"] == {"order": "A-17", "amount": 1200, "approved": True,
                                        "by": "ada"}
        applied = [e for e in shown_json["history"] if e["kind"] == "signal_applied"]
        assert [e["data"]["source"] for e in applied] == ["file:answer.json"], applied
        store = read_store(pg_url, tmp_path)
        try:
            assert store.get_instance(instance_id).owner == id_b  # B ran it on
        finally:
            store.close()
        assert (b.home / "signals" / "processed" / "answer.json").exists()

        # `procctl resume` on B of an instance A paused
        other = a.ok("run", SAMPLES / "approval.toml", "-p", "order=A-18")
        other_id = other.out.split()[1]
        wait_for(lambda: a.ok("show", other_id, "--json").json()["status"] == "paused",
                 timeout=20, message="A-18 to pause")
        resumed = b.ok("resume", "--correlation-id", "approval-A-18", "--data",
                       "approved=false", "--data", "by=bob")
        lines = resumed.out.splitlines()
        assert lines[0] == f"Resumed instance {other_id} (approval-A-18)", resumed.out
        assert re.fullmatch(r"completed in \S+s", lines[-6]), resumed.out
        assert json.loads("\n".join(lines[-5:]).removeprefix("Result: ")) == {
            "order": "A-18", "approved": False, "by": "bob"}, resumed.out

        # a definition of another pool is refused
        report = tmp_path / "trial" / "report.toml"
        report.write_text(doc_toml("report.toml"), encoding="utf-8")
        refused = a("run", report)
        assert (refused.code, refused.err) == (8, (
            "Error: process 'report' runs on agents of pool 'reports' only, and this agent "
            "is in pool 'default'\nHint: run it on a host whose agent has pool = 'reports' "
            "(procctl agents lists them)\n")), str(refused)
        in_doc(refused.err)

        # kill -9 of A while it runs count.toml: B takes it over from its checkpoint
        count = tmp_path / "trial" / "count.toml"
        count.write_text(doc_toml("count.toml"), encoding="utf-8")
        started = a.ok("run", count, "-p", f"rounds={ROUNDS}")
        match = re.fullmatch(r"Started ([0-9a-f]{12}) \(count\)\n", started.out)
        assert match, str(started)
        counting = match.group(1)
        store = read_store(pg_url, tmp_path)
        try:
            wait_for(lambda: kinds(store, counting).count("checkpoint_saved") >= 2,
                     timeout=20, message="two checkpoints of count")
            os.kill(pids[0], signal.SIGKILL)
            wait_for(lambda: agents_table(b.ok("agents"))[id_a][3] == "lease lost",
                     timeout=15, message="A listed as lease lost")
            wait_for(lambda: store.get_instance(counting).status == "completed",
                     timeout=30, message="count to complete on B")
            record = store.get_instance(counting)
            history = kinds(store, counting)
        finally:
            store.close()
        assert record.owner == id_b and record.epoch >= 1, record
        assert json.loads(record.result_json or "null") == {"counted": ROUNDS}
        assert history.count("instance_recovered") == 1, history
        # every round's checkpoint once: none lost, none taken again after the takeover
        assert history.count("checkpoint_saved") == ROUNDS, history
        shown = b.ok("show", counting, "--history", "all")
        assert re.search(r"^Status +completed", shown.out, re.M), shown.out
        assert re.search(r"instance_recovered", shown.out), shown.out

        stopped = b.ok("agent", "stop")
        assert stopped.out == f"Stopped agent pid {pids[1]}\n", str(stopped)
        rows = agents_table(a.ok("agents"))
        assert rows[id_a][3] == "lease lost" and rows[id_b][3] == "stopped", rows
        assert rows[id_a][5] == rows[id_b][5] == "0", rows
    finally:
        for host in (a, b):
            host.stop_agent()


def test_a_role_that_does_not_own_its_database_cannot_start_the_first_agent(
        tmp_path: Path, pg_server: PgServer, pg_url: str) -> None:
    """The doc's set-up: without `createdb --owner`, the first agent stops at once."""
    role = f"notowner_{unique_key()}"
    pg_server.admin("CREATE ROLE {} LOGIN", ident=role)
    try:
        url = pg_url.replace("postgresql://procctl@", f"postgresql://{role}@", 1)
        host = Procctl(tmp_path / "home")
        started = host("agent", "start", env={"PROCCTL_STORE_URL": url})
        assert started.code == 6, str(started)
        assert started.err.splitlines()[0] == (
            f"Error: the agent exited at start (status 6): the store {url} failed: "
            "permission denied for schema public"), str(started)
        in_doc(started.err.splitlines()[0].replace(url, "postgresql://procctl@localhost/other"))
        host.stop_agent()
    finally:
        pg_server.drop_database(pg_url.split("/")[3].split("?")[0])
        pg_server.admin("DROP ROLE {}", ident=role)


def test_a_store_that_cannot_be_reached_is_one_line_and_a_hint(tmp_path: Path) -> None:
    """The doc's troubleshooting: what a command says when the server is not there."""
    url = f"postgresql://procctl@/procctl?host={tmp_path}"  # no server on this socket
    result = Procctl(tmp_path / "home")("agents", env={"PROCCTL_STORE_URL": url})
    assert result.code == 6, str(result)
    first, hint = result.err.splitlines()
    assert first.startswith(f"Error: the store {url} cannot be reached: "), str(result)
    assert first.endswith(f'"{tmp_path}/.s.PGSQL.5432" failed: No such file or directory'), \
        str(result)
    assert hint == ("Hint: check that the PostgreSQL server runs and accepts this user "
                    "(see docs/multi-host.md)"), str(result)
    in_doc(hint)


def test_an_agent_started_while_the_server_is_down_waits_for_it(tmp_path: Path) -> None:
    """The doc's health section: `agent start` returns with a warning, `agent status`
    says `waiting for store` and exits 9 while no server answers."""
    url = f"postgresql://procctl@/procctl?host={tmp_path}"  # no server on this socket
    host = Procctl(tmp_path / "home")
    host.env["PROCCTL_STORE_URL"] = url
    try:
        started = host("agent", "start")
        assert started.code == 0, str(started)
        assert started.err.startswith(
            "Warning: the store does not answer: store work waits for it since "), str(started)
        assert started.err.rstrip().endswith("; procctl agent status shows when it is over"), \
            str(started)
        status = host("agent", "status")
        assert status.code == 9, str(status)
        in_doc("\n".join(line for line in status.out.splitlines()
                         if line.split("  ")[0] in ("Agent", "Start-up")))
        rows = status_rows(status)
        assert rows["Problem"].startswith(
            "the store does not answer: store work waits for it since "), rows
        text = DOC.read_text(encoding="utf-8")
        assert "Problem            the store does not answer: store work waits for it since" \
            in text
        assert "Warning: the store does not answer: store work waits for it since" in text
    finally:
        host.stop_agent()
