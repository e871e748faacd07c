"""Every complete TOML example in docs/*.md runs on the real engine (in-process: the
harness in tests/engine/harness.py) and ends as the text says.

Each example is written to a folder of its own (with the files the docs name, such as
a called definition or a plugin module, beside it) and run as
`procctl run FILE --wait --json` runs it, all at once on one engine. It must end:

- `failed` when the comment above its fence says `<!-- example: expect failed -->`;
- `running` (an intermediate result; then completed) when it has an
  intermediate_return step;
- `paused` when it has a step that pauses (a checkpoint without `continue = true`, a
  scheduled_resume);
- `completed` otherwise, and then with the result its closing comment claims, when
  that comment is a TOML value (`# { review = "...", wrap = "gift wrap" }`).

The comment syntax is described in tests/unit/test_docs.py, which also reads the blocks.
Moved from tests/e2e/test_doc_examples.py (same examples and assertions; exit code 1
there is status failed here); the samples still run through `procctl` and an agent in
tests/e2e/test_samples.py.
"""

from __future__ import annotations

import json
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from engine.harness import Engine, Launch
from unit.test_docs import DOC_BLOCKS, DocExample, write_example

from procctl.agent.definition import parse_definition
from procctl.agent.definition.model import (
    CheckpointStep,
    Definition,
    IntermediateReturnStep,
    ScheduledResumeStep,
)

#: Examples in docs this change does not edit, which need something their text gives
#: in prose (a param without a default, a data file): by process name.
NEEDS: dict[str, dict[str, Any]] = {
    # docs/reliability.md: `order` is a required param.
    "charge": {"params": ["order=A-1"]},
    # docs/snapshot-format.md: "It ran with blob.bin holding the bytes hello\0\xff".
    "typed-batch": {"files": {"blob.bin": b"hello\x00\xff"}},
}

RUNNABLE = [example for example in DOC_BLOCKS if example.load_only is None]
LOAD_ONLY = [example for example in DOC_BLOCKS if example.load_only is not None]


class _Items(BaseHTTPRequestHandler):
    """A stand-in for the HTTP API the http example talks to: POST /api/items."""

    def do_POST(self) -> None:  # the name http.server looks up
        length = int(self.headers.get("Content-Length") or 0)
        sent = json.loads(self.rfile.read(length) or b"{}")
        status, body = ((201, {"id": 1, **sent}) if self.path == "/api/items"
                        else (404, {"error": "no such path"}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def local_http() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Items)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def expected_status(example: DocExample, definition: Definition) -> str:
    if example.expect:
        return example.expect
    steps = definition.all_steps()
    if any(isinstance(step, IntermediateReturnStep) for step in steps):
        return "running"
    if any(isinstance(step, ScheduledResumeStep)
           or (isinstance(step, CheckpointStep) and not step.continue_) for step in steps):
        return "paused"
    return "completed"


def claimed_result(example: DocExample) -> tuple[bool, Any]:
    """(True, value) when the block ends with a comment that is a TOML value."""
    lines = example.body.rstrip().splitlines()
    comment: list[str] = []
    while lines and lines[-1].startswith("#"):
        comment.insert(0, lines.pop()[1:].strip())
    text = " ".join(comment)
    for prefix in ("The result:", "The result is"):
        text = text.removeprefix(prefix)
    text = text.strip().removesuffix(".")
    if not text:
        return False, None
    try:
        return True, tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return False, None


Outcomes = tuple[Engine, dict[str, tuple[Definition, dict[str, Any]]]]


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory, local_http: str) -> Iterator[Outcomes]:
    """Run every runnable example at once on one engine; the engine, and each example's
    definition and `run --wait --json` summary, by name."""
    root = tmp_path_factory.mktemp("doc-examples")
    launches: list[Launch] = []
    definitions: list[Definition] = []
    for number, example in enumerate(RUNNABLE):
        folder = root / f"{number:02d}-{Path(example.doc).stem}-{example.line}"
        path = write_example(example, folder)
        definition = parse_definition(example.body, str(path))
        needs = NEEDS.get(definition.name, {})
        for name, data in needs.get("files", {}).items():
            (folder / name).write_bytes(data)
        params = [*example.params, *needs.get("params", [])]
        launches.append(Launch(path, cli=[param.replace("$LOCAL_HTTP", local_http)
                                          for param in params]))
        definitions.append(definition)
    engine = Engine(root / "engine")
    try:
        summaries = engine.run_many(*launches, timeout=120)
        yield engine, {example.name: (definition, summary) for example, definition, summary
                       in zip(RUNNABLE, definitions, summaries, strict=True)}
    finally:
        engine.close()


@pytest.mark.parametrize("example", RUNNABLE, ids=[e.name for e in RUNNABLE])
def test_doc_example_runs_as_documented(example: DocExample, outcomes: Outcomes) -> None:
    engine, by_name = outcomes
    definition, summary = by_name[example.name]
    status = expected_status(example, definition)
    assert summary["status"] == status, f"{example.name}: {summary}"
    if status == "failed":
        assert summary["error"]["message"], summary
    if status == "paused":
        assert summary["correlation_id"], summary
    if status == "running":
        assert "intermediate" in summary, summary
        summary = engine.wait(summary["instance_id"], "completed")
    if status == "completed":
        assert summary["error"] is None, summary
        has_claim, claim = claimed_result(example)
        if has_claim:
            assert summary["result"] == claim, f"{example.name} claims {claim!r}"


def test_every_doc_example_is_run_or_loaded_with_a_reason(tmp_path: Path) -> None:
    assert len(RUNNABLE) >= 40, [example.name for example in RUNNABLE]
    # Keep examples that cannot run here (a real host on the network) to a minimum.
    assert len(LOAD_ONLY) <= 2, [example.name for example in LOAD_ONLY]
    for example in LOAD_ONLY:
        assert example.load_only, example.name
        parse_definition(example.body, str(write_example(example, tmp_path / example.doc)))


def test_claimed_results_are_read_from_the_closing_comment() -> None:
    """Guards the result check against reading nothing: these claims are compared."""
    claims = {example.name: claimed_result(example) for example in RUNNABLE}
    compared = [name for name, (has_claim, _) in claims.items() if has_claim]
    assert len(compared) >= 15, compared
    inclusive = next(e for e in RUNNABLE if "name = \"inclusive-demo\"" in e.body)
    assert claimed_result(inclusive) == (True, {"review": "large order: manual review",
                                                 "wrap": "gift wrap"})
