"""Every TOML example in docs/ and every sample in samples/ is a valid definition.

A fenced block whose info string is exactly `toml` must be a complete definition; blocks
marked `toml fragment` are parts of one and are skipped.
"""

from __future__ import annotations

import re
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


def _toml_blocks() -> list[tuple[str, str]]:
    """(name, source) of every complete TOML example in docs/*.md."""
    blocks: list[tuple[str, str]] = []
    for doc in sorted(DOCS.glob("*.md")):
        text = doc.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            if match["info"].strip() != "toml":
                continue
            line = text.count("\n", 0, match.start()) + 1
            blocks.append((f"{doc.relative_to(REPO)}:{line}", match["body"]))
    return blocks


DOC_BLOCKS = _toml_blocks()
SAMPLE_FILES = sorted(SAMPLES.glob("*.toml"))


def _parse(source: str, name: str) -> None:
    try:
        parse_definition(source, name)
    except DefinitionError as exc:
        problems = "\n".join(f"  {p.render()}" + (f" ({p.hint})" if p.hint else "")
                             for p in exc.problems)
        pytest.fail(f"{name} is not a valid definition:\n{problems}")


def test_the_docs_have_toml_examples() -> None:
    assert len(DOC_BLOCKS) >= 10, [name for name, _ in DOC_BLOCKS]


@pytest.mark.parametrize(("name", "source"), DOC_BLOCKS, ids=[n for n, _ in DOC_BLOCKS])
def test_doc_example_is_a_valid_definition(name: str, source: str) -> None:
    _parse(source, name)


def test_there_are_samples() -> None:
    assert {path.name for path in SAMPLE_FILES} >= {"hello.toml", "orders.toml"}


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_is_a_valid_definition(path: Path) -> None:
    _parse(path.read_text(encoding="utf-8"), str(path.relative_to(REPO)))


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=[p.name for p in SAMPLE_FILES])
def test_sample_is_explained_at_its_top(path: Path) -> None:
    head = path.read_text(encoding="utf-8").splitlines()[:5]
    assert head and all(line.startswith("#") for line in head), (
        f"{path.name} should open with a comment that explains it and how to run it")
    assert f"procctl run samples/{path.name}" in path.read_text(encoding="utf-8")


def test_a_broken_example_would_be_caught() -> None:
    """The extraction sees blocks, and parse errors surface (guards against a dead test)."""
    text = "intro\n\n```toml\n[process]\nname = \"x\"\n```\n\n```toml fragment\nid = 1\n```\n"
    bodies = [m["body"] for m in _FENCE.finditer(text) if m["info"].strip() == "toml"]
    assert bodies == ['[process]\nname = "x"\n']
    with pytest.raises(DefinitionError):
        parse_definition(bodies[0], "example")
