"""Every TOML example in docs/ and every sample in samples/ is a valid definition.

A fenced block whose info string is exactly `toml` must be a complete definition; blocks
marked `toml fragment` are parts of one and are skipped. An HTML comment on the line
right above a fence says more about the example (tests/engine/test_doc_examples.py runs
them):

    <!-- example: file=price-line.toml -->    the block is a file other examples use
                                             (a called definition, a plugin module): it
                                             is saved under that name beside each one
    <!-- example: expect failed -->           the example shows a failure
    <!-- example: -p order=A-1 -->           params for the run ($LOCAL_HTTP: the URL of
                                             a local HTTP server the test starts)
    <!-- example: load-only (needs network) --> loaded, never run, and why

Words can be combined: `<!-- example: expect failed -p order=A-1 -->`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from procctl.agent.definition import parse_definition
from procctl.agent.errors import DefinitionError

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
SAMPLES = REPO / "samples"

# A fence line, its info string, the body, and the closing fence of the same length.
_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                    re.MULTILINE | re.DOTALL)
_DIRECTIVE = re.compile(r"^<!--\s*example:(?P<words>.*?)-->\s*$")
STATUSES = ("completed", "paused", "running", "failed")


@dataclass(frozen=True)
class DocExample:
    """One fenced block of docs/*.md and what its `<!-- example: ... -->` line says."""

    doc: str  # "docs/process-format.md"
    line: int  # the line of the opening fence
    info: str  # "toml", "toml fragment", "python", ...
    body: str
    file: str | None = None
    expect: str | None = None
    params: tuple[str, ...] = ()
    load_only: str | None = None

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def complete(self) -> bool:
        """A complete definition, to load (and to run, unless it is load-only)."""
        return self.info == "toml"


def _directive(words: str, where: str) -> dict[str, object]:
    words = words.strip()
    if words.startswith("load-only"):
        reason = words.removeprefix("load-only").strip().strip("()")
        assert reason, f"{where}: say why the example is load-only"
        return {"load_only": reason}
    found: dict[str, object] = {}
    params: list[str] = []
    tokens = shlex.split(words)
    while tokens:
        token = tokens.pop(0)
        if token.startswith("file="):
            found["file"] = token.removeprefix("file=")
        elif token == "expect" and tokens and tokens[0] in STATUSES:
            found["expect"] = tokens.pop(0)
        elif token == "-p" and tokens and "=" in tokens[0]:
            params.append(tokens.pop(0))
        else:
            raise AssertionError(f"{where}: cannot read {token!r} in <!-- example: {words} -->")
    found["params"] = tuple(params)
    return found


def doc_examples() -> list[DocExample]:
    """Every fenced block of docs/*.md, in file order."""
    found: list[DocExample] = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            name = str(doc.relative_to(REPO))
            above = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
            directive = _DIRECTIVE.match(above)
            example = DocExample(name, line, match["info"].strip(), match["body"])
            if directive:
                example = replace(example, **_directive(directive["words"], example.name))
            found.append(example)
    return found


EXAMPLES = doc_examples()
DOC_BLOCKS = [example for example in EXAMPLES if example.complete]
NAMED_FILES = {example.file: example for example in EXAMPLES if example.file}
SAMPLE_FILES = sorted(SAMPLES.glob("*.toml"))


def write_example(example: DocExample, folder: Path) -> Path:
    """Write the example into `folder` beside every named file of the docs (called
    definitions, plugin modules); returns the example's path."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, named in NAMED_FILES.items():
        (folder / file_name).write_text(named.body, encoding="utf-8")
    path = folder / (example.file or "example.toml")
    path.write_text(example.body, encoding="utf-8")
    return path


def _parse(source: str, name: str, file: Path | None = None) -> None:
    try:
        parse_definition(source, str(file) if file else name)
    except DefinitionError as exc:
        problems = "\n".join(f"  {p.render()}" + (f" ({p.hint})" if p.hint else "")
                             for p in exc.problems)
        pytest.fail(f"{name} is not a valid definition:\n{problems}")


def test_the_docs_have_toml_examples() -> None:
    assert len(DOC_BLOCKS) >= 10, [example.name for example in DOC_BLOCKS]
    assert {"docs/plugins.md", "docs/process-format.md"} <= {e.doc for e in DOC_BLOCKS}


@pytest.mark.parametrize("example", DOC_BLOCKS, ids=[e.name for e in DOC_BLOCKS])
def test_doc_example_is_a_valid_definition(example: DocExample, tmp_path: Path) -> None:
    # Written to disk beside the named files, so that `call` files and plugin modules
    # are found as they would be beside a real definition.
    _parse(example.body, example.name, write_example(example, tmp_path))


def test_named_doc_files_are_distinct() -> None:
    names = [example.file for example in EXAMPLES if example.file]
    assert len(names) == len(set(names)), names


def test_the_plugin_in_the_docs_is_the_sample_plugin() -> None:
    """docs/plugins.md shows samples/textkit.py whole: the two cannot drift apart."""
    shown = NAMED_FILES["textkit.py"]
    assert shown.doc == "docs/plugins.md" and shown.info == "python"
    assert shown.body == (SAMPLES / "textkit.py").read_text(encoding="utf-8")


def test_there_are_samples() -> None:
    assert {path.name for path in SAMPLE_FILES} >= {
        "hello.toml", "orders.toml", "shapes.toml", "plugin.toml", "batch.toml",
        "invoice.toml"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_is_a_valid_definition(path: Path) -> None:
    _parse(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)), path)


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_is_explained_at_its_top(path: Path) -> None:
    head = path.read_text(encoding="utf-8").splitlines()[:5]
    assert head and all(line.startswith("#") for line in head), (
        f"{path.name} should open with a comment that explains it and how to run it")
    assert f"procctl run samples/{path.name}" in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_has_no_warnings(path: Path) -> None:
    definition = parse_definition(path.read_text(encoding="utf-8"), str(path))
    assert not definition.warnings, [w.render() for w in definition.warnings]


def test_a_broken_example_would_be_caught() -> None:
    """The extraction sees blocks, and parse errors surface (guards against a dead test)."""
    text = "intro\n\n```toml\n[process]\nname = \"x\"\n```\n\n```toml fragment\nid = 1\n```\n"
    bodies = [m["body"] for m in _FENCE.finditer(text) if m["info"].strip() == "toml"]
    assert bodies == ['[process]\nname = "x"\n']
    with pytest.raises(DefinitionError):
        parse_definition(bodies[0], "example")


def test_example_directives_are_read() -> None:
    assert _directive(" expect failed -p order=A-1 -p 'note=a b' ", "x") == {
        "expect": "failed", "params": ("order=A-1", "note=a b")}
    assert _directive("file=child.toml", "x") == {"file": "child.toml", "params": ()}
    assert _directive("load-only (needs network)", "x") == {"load_only": "needs network"}
    with pytest.raises(AssertionError, match="cannot read 'expected'"):
        _directive("expected failed", "x")
