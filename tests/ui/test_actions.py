"""The web view's actions (cli/web/actions.py): POST /api/resume, /api/cancel and
/api/retry through the real app (its guard included) with Starlette's TestClient, on a
real home: instances run by a real agent, the store read back with `procctl show`.

A payload that does not fit the checkpoint's `expects` is refused with a 400 naming the
field before anything is sent (the instance stays paused, no signal file is written);
one that fits completes the instance; cancel and retry go to the agent, which is
started when none runs; and every action needs the token header and this server's
Origin.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    SAMPLES,
    Procctl,
    instance_state,
    run_paused,
    show_json,
    unique_key,
    wait_for,
)
from ui.kit import require_ui

from procctl.agent.paths import HomePaths

APPROVAL = SAMPLES / "approval.toml"
ORIGIN = "http://127.0.0.1"

READS_A_FILE = """
[process]
name = "ui-retry"

[process.params.path]
type = "str"

[[steps]]
id = "read"
task = "file.read"
with = { path = "{{ path }}" }

[[steps]]
id = "done"
kind = "return"
value = "{{ result }}"
"""

#: sleeps after its checkpoint: a resume is answered once it completes
SLEEPS_AFTER = """
[process]
name = "ui-sleeps"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "sleeps-{{ key }}"

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = 1.5 }

[[steps]]
id = "done"
kind = "return"
value = "rested"
"""

#: no `expects`: the fields come from what later steps read
UNDECLARED = """
[process]
name = "ui-undeclared"

[process.params.key]
type = "str"

[[steps]]
id = "wait"
kind = "checkpoint"
correlation_id = "undeclared-{{ key }}"

[[steps]]
id = "answer"
kind = "return"
value = "{{ results['wait'].payload.answer }}"
"""


class Ui:
    """The app on one home, reached as a browser on this machine reaches it."""

    def __init__(self, procctl: Procctl) -> None:
        from starlette.testclient import TestClient

        from procctl.cli.web.app import build_app

        self.procctl = procctl
        self.token = secrets.token_urlsafe(32)
        app = build_app(HomePaths.resolve(procctl.home), self.token)
        self.client = TestClient(app, base_url=ORIGIN, client=("127.0.0.1", 50000))

    def post(self, path: str, body: Any, *, token: str | None = "",
             origin: str | None = ORIGIN) -> Any:
        headers = {}
        if token is not None:
            headers["X-Procctl-Token"] = token or self.token
        if origin is not None:
            headers["Origin"] = origin
        return self.client.post(path, json=body, headers=headers)

    def close(self) -> None:
        self.client.close()


@pytest.fixture
def procctl(shared_procctl: Procctl) -> Procctl:
    """The session's home and agent (tests/conftest.py): each test here makes its own
    instances (unique keys) and reads only those. The test that stops the agent has a
    home of its own."""
    return shared_procctl


@pytest.fixture
def ui(procctl: Procctl) -> Iterator[Ui]:
    require_ui()
    client = Ui(procctl)
    yield client
    client.close()


def paused_approval(procctl: Procctl) -> tuple[str, str]:
    """A samples/approval.toml instance paused by the agent: (its ID, correlation ID)."""
    order = unique_key()
    summary = run_paused(procctl, APPROVAL, "-p", f"order={order}")
    return summary["instance_id"], f"approval-{order}"


def signal_files(home: Path, correlation_id: str) -> list[Path]:
    """The signal files sent to `correlation_id`: waiting, processed or rejected."""
    return [path for path in sorted((home / "signals").rglob("*.json"))
            if correlation_id in path.read_text(encoding="utf-8")]


def test_a_resume_that_fits_completes_the_instance(ui: Ui, procctl: Procctl) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    answer = ui.post("/api/resume", {"correlation_id": correlation_id,
                                     "payload": {"approved": True, "by": "ada"}})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == "applied", body
    assert body["instance"]["instance_id"] == instance_id
    assert body["instance"]["status"] == "completed", body
    assert body["signal"]["correlation_id"] == correlation_id
    assert body["signal"]["payload"] == {"approved": True, "by": "ada"}
    shown = show_json(procctl, instance_id)
    assert shown["status"] == "completed"
    assert shown["result"]["approved"] is True and shown["result"]["by"] == "ada"


@pytest.mark.parametrize(("payload", "words"), [
    ({"approved": "yes", "by": "ada"}, "must be bool, not str"),
    ({"by": "ada"}, "is missing"),
    ({"approved": True, "by": 7}, "must be str, not int"),
])
def test_a_payload_that_does_not_fit_is_a_400_naming_the_field(
        ui: Ui, procctl: Procctl, payload: dict[str, Any], words: str) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    answer = ui.post("/api/resume", {"correlation_id": correlation_id, "payload": payload})
    assert answer.status_code == 400, answer.text
    body = answer.json()
    wanted = "by" if payload.get("by") == 7 else "approved"
    assert body["ok"] is False and body["field"] == wanted, body
    assert words in body["message"] and repr(wanted) in body["message"], body
    assert body["instance"]["status"] == "paused"
    # nothing was sent: the instance waits, no signal file, no signal record
    assert show_json(procctl, instance_id)["status"] == "paused"
    assert signal_files(procctl.home, correlation_id) == []
    listed = procctl.ok("signals", "--json").json()
    assert correlation_id not in str(listed)


def test_fields_found_in_later_steps_must_be_there(ui: Ui, procctl: Procctl,
                                                   write_definition: Any) -> None:
    key = unique_key()
    summary = run_paused(procctl, write_definition(UNDECLARED), "-p", f"key={key}")
    missing = ui.post("/api/resume", {"correlation_id": f"undeclared-{key}", "payload": {}})
    assert missing.status_code == 400, missing.text
    assert missing.json()["field"] == "answer"
    assert "a later step of the process reads it" in missing.json()["message"]
    assert show_json(procctl, summary["instance_id"])["status"] == "paused"
    done = ui.post("/api/resume", {"correlation_id": f"undeclared-{key}",
                                   "payload": {"answer": "forty-two"}})
    assert done.status_code == 200, done.text
    assert done.json()["instance"]["status"] == "completed"
    assert done.json()["instance"]["result"] == "forty-two"


def test_a_resume_to_no_paused_instance_is_refused_with_the_ids_near_it(
        ui: Ui, procctl: Procctl) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    answer = ui.post("/api/resume", {"correlation_id": correlation_id + "x",
                                     "payload": {"approved": True}})
    assert answer.status_code == 409, answer.text
    body = answer.json()
    assert body["ok"] is False and body["status"] == "refused"
    assert correlation_id in body["did_you_mean"]
    assert body["message"].startswith(
        f"No instance is paused at correlation ID {correlation_id + 'x'!r}"), body
    assert show_json(procctl, instance_id)["status"] == "paused"


def test_a_resume_starts_the_agent_when_none_runs(home: Path) -> None:
    require_ui()
    procctl = Procctl(home)
    ui = Ui(procctl)
    try:
        _resume_without_agent(ui, procctl)
    finally:
        ui.close()
        procctl.stop_agent()


def _resume_without_agent(ui: Ui, procctl: Procctl) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    procctl.stop_agent()
    assert procctl("agent", "status").code != 0
    answer = ui.post("/api/resume", {"correlation_id": correlation_id,
                                     "payload": {"approved": False, "by": "bob"}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["instance"]["status"] == "completed"
    assert show_json(procctl, instance_id)["result"]["approved"] is False
    assert procctl("agent", "status").code == 0


def test_cancel_ends_a_paused_instance_and_a_second_is_refused(ui: Ui,
                                                               procctl: Procctl) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    answer = ui.post("/api/cancel", {"instance_id": instance_id[:8],
                                     "reason": "order withdrawn"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == "cancelled", body
    assert body["instance"]["instance_id"] == instance_id
    assert body["instance"]["status"] == "cancelled"
    shown = show_json(procctl, instance_id)
    assert shown["status"] == "cancelled"
    assert shown["error"]["reason"] == "order withdrawn"
    assert shown["error"]["by"].startswith("ui:")
    again = ui.post("/api/cancel", {"instance_id": instance_id})
    assert again.status_code == 409, again.text
    assert again.json()["status"] == "refused"
    assert "cancelled already" in again.json()["message"]
    # its checkpoint is gone: a resume is refused with the cancellation
    resume = ui.post("/api/resume", {"correlation_id": correlation_id,
                                     "payload": {"approved": True}})
    assert resume.status_code == 409 and "order withdrawn" in resume.json()["message"]


def test_retry_runs_a_failed_instance_again(ui: Ui, procctl: Procctl, tmp_path: Path,
                                            write_definition: Any) -> None:
    wanted = tmp_path / "input.txt"
    failed = procctl("run", write_definition(READS_A_FILE), "-p", f"path={wanted}",
                     "--wait", "--json")
    summary = failed.json()
    assert summary["status"] == "failed", str(failed)
    # done, but failed again: not ok, and the page says why
    again = ui.post("/api/retry", {"instance_id": summary["instance_id"]})
    assert again.status_code == 200, again.text
    assert again.json()["ok"] is False and again.json()["instance"]["status"] == "failed"
    assert "failed: cannot read" in again.json()["message"]
    wanted.write_text("found it", encoding="utf-8")
    answer = ui.post("/api/retry", {"instance_id": summary["instance_id"]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["ok"] is True and body["status"] == "retried", body
    assert body["action"] == "restarted from the beginning"
    assert body["instance"]["status"] == "completed" and body["instance"]["result"] == \
        "found it"
    assert show_json(procctl, summary["instance_id"])["status"] == "completed"
    # a completed instance is not retried
    refused = ui.post("/api/retry", {"instance_id": summary["instance_id"]})
    assert refused.status_code == 409 and "only a failed or held instance" in \
        refused.json()["message"]


def test_unknown_instances_and_bad_bodies_are_one_clear_line(ui: Ui,
                                                             procctl: Procctl) -> None:
    paused_approval(procctl)
    unknown = ui.post("/api/cancel", {"instance_id": "ffffffffffff"})
    assert unknown.status_code == 404 and unknown.json()["status"] == "not_found"
    assert "ffffffffffff" in unknown.json()["message"]
    for body, words in [
        ([], "must be a JSON object"),
        ({"payload": {}}, "correlation_id must be a non-empty string"),
        ({"correlation_id": "x", "payload": [1]}, "Payload must be a JSON object"),
        ({"correlation_id": "x", "signal_id": "no/slash"}, "signal_id"),
    ]:
        answer = ui.post("/api/resume", body)
        assert answer.status_code == 400, (body, answer.text)
        assert answer.json()["ok"] is False and words in answer.json()["message"], body
    raw = ui.client.post("/api/retry", content=b"{not json",
                         headers={"X-Procctl-Token": ui.token, "Origin": ORIGIN})
    assert raw.status_code == 400 and "not JSON" in raw.json()["message"]


def test_actions_need_the_token_header_and_this_origin(ui: Ui, procctl: Procctl) -> None:
    instance_id, correlation_id = paused_approval(procctl)
    resume = {"correlation_id": correlation_id, "payload": {"approved": True}}
    # the cookie a page visit sets is not enough for a POST
    page = ui.client.get(f"/?token={ui.token}")
    assert page.status_code == 200 and ui.client.cookies.get("procctl_ui")
    refused = [
        ui.post("/api/resume", resume, token=None),
        ui.post("/api/resume", resume, token="wrong-" + ui.token),
        ui.post("/api/resume", resume, origin=None),
        ui.post("/api/resume", resume, origin="http://evil.example"),
        ui.post("/api/cancel", {"instance_id": instance_id}, origin="http://127.0.0.1:1"),
        ui.post("/api/retry", {"instance_id": instance_id}, token=None),
    ]
    assert [answer.status_code for answer in refused] == [403] * len(refused)
    assert show_json(procctl, instance_id)["status"] == "paused"
    assert signal_files(procctl.home, correlation_id) == []


def test_an_action_runs_beside_the_event_loop(ui: Ui, procctl: Procctl,
                                              write_definition: Any) -> None:
    """A resume whose instance sleeps 1.5 s after it is answered when it completes;
    meanwhile the server answers other requests (the action runs in a thread)."""
    key = unique_key()
    instance_id = run_paused(procctl, write_definition(SLEEPS_AFTER), "-p",
                             f"key={key}")["instance_id"]
    answers: list[Any] = []
    with ui.client:  # one event loop for both requests
        slow = threading.Thread(target=lambda: answers.append(ui.post(
            "/api/resume", {"correlation_id": f"sleeps-{key}", "payload": {}})))
        slow.start()
        try:
            wait_for(lambda: instance_state(procctl, instance_id)[0] == "running",
                     timeout=20, message="the resumed instance to run")
            quick = ui.post("/api/cancel", {"instance_id": 1})
            assert quick.status_code == 400
            assert slow.is_alive() and answers == []
        finally:
            slow.join(timeout=30)
    assert answers and answers[0].status_code == 200, answers
    assert answers[0].json()["instance"]["status"] == "completed"
    assert answers[0].json()["instance"]["result"] == "rested"
