"""Every step kind and built-in task, run by the real engine in-process (the harness in
tests/engine/harness.py): log, set, if, foreach, return, throw, exec (argv, env,
stderr, timeout), retries, http and sleep.

Moved from tests/e2e/test_steps.py with the same definitions and assertions; an exit
code of 1 there is a failed instance here (`procctl run` exits 1 exactly when the
instance failed). What stays end to end: a failure printed as one line naming the step,
and file paths resolved against the definition, not the command's directory.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from engine.harness import Engine
from helpers import wait_for


def toml(value: Any) -> str:
    """A TOML literal for a string or a list of strings (JSON's syntax is valid TOML here)."""
    return json.dumps(value)


def run_wait(engine: Engine, path: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    """As `run --wait --json PATH ARGS` (`-p name=value` pairs): the summary, with the
    exit code `procctl run` would give checked (1 exactly when the instance failed)."""
    summary = engine.run(path, cli=[arg for arg in args if arg != "-p"])
    assert (1 if summary["status"] == "failed" else 0) == expect, summary
    return summary


# -- task: log ------------------------------------------------------------------------


def test_log_task_writes_to_history_and_returns_its_message(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "logging"
[process.params.who]
type = "str"

[[steps]]
id = "greet"
kind = "task"
task = "log"
with = { message = "Hello, {{ who }}!", level = "warning" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['greet'] }}"
""")
    summary = run_wait(engine, path, "-p", "who=Ada")
    assert summary["status"] == "completed"
    assert summary["result"] == "Hello, Ada!"
    logs = [e for e in engine.history(summary["instance_id"]) if e["kind"] == "log"]
    assert [(e["step_id"], e["data"]["message"], e["data"]["level"]) for e in logs] == [
        ("greet", "Hello, Ada!", "warning")]


# -- set --------------------------------------------------------------------------------


def test_set_keeps_the_types_of_single_expressions(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "setting"

[[steps]]
id = "values"
kind = "set"

[steps.values]
three = "{{ 1 + 2 }}"
text = "total: {{ 1 + 2 }}"
items = "{{ [1, 'b', true] }}"
table = "{{ {'k': 1.5} }}"
plain = "no braces"
six = "{{ three * 2 }}"

[[steps]]
id = "done"
kind = "return"

[steps.value]
three = "{{ three }}"
text = "{{ text }}"
items = "{{ items }}"
table = "{{ table }}"
plain = "{{ plain }}"
six = "{{ six }}"
is_int = "{{ three is integer }}"
""")
    summary = run_wait(engine, path)
    assert summary["result"] == {
        "three": 3,  # an int, not "3"
        "text": "total: 3",  # text around an expression gives a string
        "items": [1, "b", True],
        "table": {"k": 1.5},
        "plain": "no braces",
        "six": 6,  # a later value sees an earlier one of the same step
        "is_int": True,
    }


# -- if / else --------------------------------------------------------------------------


def test_if_runs_then_or_else(engine: Engine) -> None:
    path = engine.write("""
[process]
name = "branching"
[process.params.numbers]
type = "list"

[[steps]]
id = "each"
kind = "foreach"
items = "{{ numbers }}"
as = "n"

[[steps.body]]
id = "check"
kind = "if"
condition = "n > 10"

[[steps.body.then]]
id = "big"
task = "log"
with = { message = "{{ n }} is big" }

[[steps.body.else]]
id = "small"
task = "log"
with = { message = "{{ n }} is small" }

[[steps]]
id = "done"
kind = "return"
value = "{{ results['each'] }}"
""")
    summary = run_wait(engine, path, "-p", "numbers=[3, 11, 10, 12]")
    assert summary["status"] == "completed"
    # Each iteration's result is the result of the branch that ran.
    assert summary["result"] == ["3 is small", "11 is big", "10 is small", "12 is big"]


# -- foreach ----------------------------------------------------------------------------


def test_foreach_collects_each_iterations_result(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "looping"
[process.params.names]
type = "list"

[[steps]]
id = "each"
kind = "foreach"
items = "{{ names }}"
as = "name"
index_as = "i"

[[steps.body]]
id = "shout"
kind = "set"
values = { loud = "{{ name | upper }}" }

[[steps.body]]
id = "say"
task = "log"
with = { message = "{{ i }}:{{ loud }}" }

[[steps]]
id = "done"
kind = "return"
value = { each = "{{ results['each'] }}", last = "{{ loud }}" }
""")
    summary = run_wait(engine, path, "-p", 'names=["ada", "bob", "cy"]')
    assert summary["status"] == "completed"
    assert summary["result"] == {"each": ["0:ADA", "1:BOB", "2:CY"], "last": "CY"}


# -- return / throw ---------------------------------------------------------------------


def test_return_ends_the_process_with_its_value(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "returning"

[[steps]]
id = "early"
kind = "return"
value = { answer = "{{ 6 * 7 }}", nested = { list = ["{{ 1 + 1 }}", "x"], text = "v{{ 2 }}" } }

[[steps]]
id = "never"
kind = "throw"
message = "steps after a return must not run"
""")
    summary = run_wait(engine, path)
    assert summary["status"] == "completed"  # the throw after it never ran
    assert summary["error"] is None
    assert summary["result"] == {"answer": 42, "nested": {"list": [2, "x"], "text": "v2"}}


def test_throw_fails_the_instance_with_its_message(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "throwing"
[process.params.code]
type = "int"

[[steps]]
id = "check"
kind = "if"
condition = "code != 0"

[[steps.then]]
id = "boom"
kind = "throw"
message = "bad code {{ code }}"
""")
    summary = run_wait(engine, path, "-p", "code=42", expect=1)
    assert summary["status"] == "failed"
    assert summary["result"] is None
    assert summary["error"]["message"] == "bad code 42"
    assert summary["error"]["step_id"] == "boom"
    assert summary["error"]["step_path"] == "steps[0].then[0]"


# -- task: exec -------------------------------------------------------------------------

SHOW_ARGV_AND_ENV = """
import json, os, sys
print(json.dumps({
    "argv": sys.argv[1:],
    "greeting": os.environ["GREETING"],
    "key": os.environ["PROCCTL_IDEMPOTENCY_KEY"],
}))
"""


def test_exec_captures_stdout_and_passes_argv_and_env(
        engine: Engine) -> None:
    argv = [sys.executable, "-c", SHOW_ARGV_AND_ENV, "two words", "$HOME", "*"]
    path = engine.write(f"""
[process]
name = "exec-ok"

[[steps]]
id = "run"
task = "exec"
with = {{ argv = {toml(argv)}, env = {{ GREETING = "hi there" }} }}

[[steps]]
id = "done"
kind = "return"
value = {{ code = "{{{{ result.exit_code }}}}", out = "{{{{ result.stdout }}}}" }}
""")
    summary = run_wait(engine, path)
    assert summary["status"] == "completed"
    assert summary["result"]["code"] == 0
    seen = json.loads(summary["result"]["out"])
    # No shell: spaces, $ and * reach the program untouched, one argv item each.
    assert seen["argv"] == ["two words", "$HOME", "*"]
    assert seen["greeting"] == "hi there"
    assert seen["key"] == f"{summary['instance_id']}:run:1"


def test_failing_exec_fails_the_step_with_its_stderr_tail(
        engine: Engine) -> None:
    script = ("import sys; sys.stderr.write('START-OF-STDERR ' + 'x' * 2000 + "
              "' the disk is full\\n'); sys.exit(3)")
    path = engine.write(f"""
[process]
name = "exec-fail"

[[steps]]
id = "broken"
task = "exec"
with = {{ argv = {toml([sys.executable, "-c", script])} }}

[[steps]]
id = "after"
task = "log"
with = {{ message = "must not run" }}
""")
    summary = run_wait(engine, path, expect=1)
    assert summary["status"] == "failed"
    error = summary["error"]
    assert error["step_id"] == "broken"
    assert "exited with status 3" in error["message"]
    assert error["message"].endswith("the disk is full")  # the tail of stderr ...
    assert "START-OF-STDERR" not in error["message"]  # ... not all of it
    assert len(error["message"]) < 600


def test_exec_timeout_fails_quickly_and_kills_the_program(
        engine: Engine, tmp_path: Path) -> None:
    # The shell writes its pid and becomes `sleep 30` (exec keeps the pid).
    path = engine.write("""
[process]
name = "exec-timeout"

[[steps]]
id = "slow"
task = "exec"
timeout = "1s"
with = { argv = ["sh", "-c", "echo $$ > sleeper.pid; exec sleep 30"] }
""")
    started = time.monotonic()
    summary = run_wait(engine, path, expect=1)
    took = time.monotonic() - started
    assert took < 10, f"a 1s timeout took {took:.1f}s"
    assert summary["status"] == "failed"
    assert summary["error"]["step_id"] == "slow"
    assert "timed out after 1" in summary["error"]["message"]
    sleeper = int((tmp_path / "sleeper.pid").read_text())
    wait_for(lambda: not _alive(sleeper), timeout=5, message="the timed-out sleep to be killed")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1][0] != "Z"
    except OSError:
        return False


# -- retries ----------------------------------------------------------------------------

FLAKY = """
import os, pathlib, sys
counter = pathlib.Path("attempts.txt")
n = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(n))
with open("keys.txt", "a") as keys:
    keys.write(os.environ["PROCCTL_IDEMPOTENCY_KEY"] + "\\n")
if n < int(sys.argv[1]):
    sys.exit("attempt %d failed" % n)
print("ok on attempt", n)
"""


def _flaky_definition(succeed_on: int, retries: int) -> str:
    argv = [sys.executable, "-c", FLAKY, str(succeed_on)]
    return f"""
[process]
name = "flaky"

[[steps]]
id = "flaky"
task = "exec"
retries = {retries}
retry_delay = "50ms"
with = {{ argv = {toml(argv)} }}
"""


def test_retries_run_the_task_again_until_it_succeeds(
        engine: Engine, tmp_path: Path) -> None:
    path = engine.write(_flaky_definition(succeed_on=3, retries=3))
    summary = run_wait(engine, path)
    assert summary["status"] == "completed"
    assert summary["result"]["stdout"] == "ok on attempt 3\n"
    assert (tmp_path / "attempts.txt").read_text() == "3"
    retries = [e for e in engine.history(summary["instance_id"])
               if e["kind"] == "step_retry"]
    assert [(e["step_id"], e["data"]["attempt"]) for e in retries] == [("flaky", 1), ("flaky", 2)]
    assert "attempt 1 failed" in retries[0]["data"]["message"]
    # Each attempt has its own idempotency key.
    keys = (tmp_path / "keys.txt").read_text().split()
    assert keys == [f"{summary['instance_id']}:flaky:{n}" for n in (1, 2, 3)]


def test_retries_give_up_after_the_last_attempt(
        engine: Engine, tmp_path: Path) -> None:
    path = engine.write(_flaky_definition(succeed_on=99, retries=1))
    summary = run_wait(engine, path, expect=1)
    assert summary["status"] == "failed"
    assert summary["error"]["step_id"] == "flaky"
    assert "attempt 2 failed" in summary["error"]["message"]
    assert (tmp_path / "attempts.txt").read_text() == "2"


# -- http -------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []

    def _reply(self, status: int, body: Any) -> None:
        text = isinstance(body, str)
        data = body.encode() if text else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.seen.append({"method": self.command, "path": self.path, "body": body,
                          "key": self.headers.get("Idempotency-Key"),
                          "type": self.headers.get("Content-Type")})
        if self.path.startswith("/fail"):
            self._reply(500, "the server broke")
        elif self.command == "POST":
            self._reply(200, {"echo": body})
        else:
            self._reply(200, {"hello": "world", "path": self.path})

    do_GET = do_POST = _answer  # the names http.server calls

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def http_server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", _Handler.seen
    finally:
        server.shutdown()
        server.server_close()


HTTP = """
[process]
name = "http"
[process.params.base]
type = "str"

[[steps]]
id = "get"
task = "http"
with = { url = "{{ base }}/hello?x=1" }

[[steps]]
id = "post"
task = "http"

[steps.with]
url = "{{ base }}/echo"
method = "POST"
json = { name = "Ada", tags = ["a", 1], got = "{{ result.body.hello }}" }

[[steps]]
id = "done"
kind = "return"

[steps.value]
get_status = "{{ results['get'].status }}"
get_body = "{{ results['get'].body }}"
post = "{{ results['post'].body }}"
"""


def test_http_get_and_post_json(engine: Engine,
                                http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, seen = http_server
    path = engine.write(HTTP)
    summary = run_wait(engine, path, "-p", f"base={base}")
    assert summary["status"] == "completed", summary["error"]
    assert summary["result"]["get_status"] == 200
    assert summary["result"]["get_body"] == {"hello": "world", "path": "/hello?x=1"}
    expected = {"name": "Ada", "tags": ["a", 1], "got": "world"}
    assert summary["result"]["post"] == {"echo": expected}
    requests = [r for r in seen if r["path"] in ("/hello?x=1", "/echo")][-2:]
    assert [r["method"] for r in requests] == ["GET", "POST"]
    assert requests[1]["body"] == expected
    assert requests[1]["type"] == "application/json"
    assert requests[1]["key"] == f"{summary['instance_id']}:post:1"


def test_http_error_status_fails_the_step(
        engine: Engine,
        http_server: tuple[str, list[dict[str, Any]]]) -> None:
    base, _ = http_server
    path = engine.write("""
[process]
name = "http-fail"
[process.params.base]
type = "str"

[[steps]]
id = "call"
task = "http"
with = { url = "{{ base }}/fail", method = "POST", json = { a = 1 } }

[[steps]]
id = "after"
task = "log"
with = { message = "must not run" }
""")
    summary = run_wait(engine, path, "-p", f"base={base}", expect=1)
    assert summary["status"] == "failed"
    assert summary["error"]["step_id"] == "call"
    assert "500" in summary["error"]["message"]
    assert "the server broke" in summary["error"]["message"]


# -- task: sleep ------------------------------------------------------------------------


def test_sleep_waits_the_given_duration(
        engine: Engine) -> None:
    path = engine.write("""
[process]
name = "sleeping"

[[steps]]
id = "nap"
task = "sleep"
with = { seconds = "400ms" }
""")
    summary = run_wait(engine, path)
    assert summary["status"] == "completed"
    assert summary["result"] == 0.4
    took = (datetime.fromisoformat(summary["ended_at"])
            - datetime.fromisoformat(summary["started_at"])).total_seconds()
    assert took >= 0.4
