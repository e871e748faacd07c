"""The web view's graph: `graph_source` marks the step an instance stands at (or failed
at) on the definition's Mermaid flowchart, and the text stays a valid, safe flowchart."""

from __future__ import annotations

from pathlib import Path

import pytest
from unit.test_graph import CHILD, EVERY_KIND, check_mermaid

from procctl.agent.definition import Definition, load_definition, parse_definition
from procctl.agent.definition.graph import mermaid
from procctl.cli.web.graph import graph_source

REPO = Path(__file__).resolve().parents[2]


def approval() -> Definition:
    return load_definition(REPO / "samples" / "approval.toml")


def marked(text: str, mark: str) -> tuple[str, str]:
    """(node id, first label line) of the one node with class `mark`."""
    chart, problems = check_mermaid(text)
    # the checker knows classes on nodes only; Mermaid also styles a subgraph by class
    problems = [p for p in problems if not (
        p.startswith(f"class {mark}: s") and p.split()[2] in chart.subgraphs)]
    assert not problems, "\n".join(problems) + "\n\n" + text
    [node] = chart.classes[mark]
    title = chart.subgraphs.get(node) or chart.nodes[node]
    return node, title.split("\n")[0]


def test_the_paused_checkpoint_is_marked_current() -> None:
    text = graph_source(approval(), "wait-for-answer")
    assert marked(text, "current")[1] == "checkpoint wait-for-answer"
    assert "failed" not in check_mermaid(text)[0].classes
    # the drawing itself is the one `procctl graph` prints, plus the mark
    assert text.startswith(mermaid(approval()))


def test_a_failed_step_is_marked_failed() -> None:
    text = graph_source(approval(), "decide", failed=True)
    assert marked(text, "failed")[1] == "if decide"
    assert "current" not in check_mermaid(text)[0].classes


@pytest.mark.parametrize("step_id", [None, "no-such-step"])
def test_no_or_an_unknown_step_marks_nothing(step_id: str | None) -> None:
    assert graph_source(approval(), step_id) == mermaid(approval())


def test_every_kind_of_step_can_be_marked(tmp_path: Path) -> None:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    path = tmp_path / "every-kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    definition = load_definition(path)
    for step in definition.all_steps():
        node, title = marked(graph_source(definition, step.id), "current")
        assert title.startswith(f"{step.kind} {step.id}"), (step.id, node, title)


def test_labels_cannot_break_out_or_inject() -> None:
    definition = parse_definition(
        '[process]\nname = "p"\n'
        '[[steps]]\nid = "fetch.data-1"\ntask = "log"\nwith = { message = "hi" }\n'
        '[[steps]]\nid = "t"\nkind = "throw"\n'
        'message = "\\"]; click n0 call alert(1) %% <script>alert(1)</script> '
        '\\"><img src=x onerror=alert(1)> end ; #quot; a\\nb"\n')
    text = graph_source(definition, "fetch.data-1")
    assert marked(text, "current")[1] == "task fetch.data-1 (log)"
    chart, _ = check_mermaid(text)
    [thrown] = [label for label in chart.nodes.values() if label.startswith("throw t")]
    # the message survives as text, line break and all; nothing of it is markup or syntax
    assert thrown == ('throw t\n"]; click n0 call alert(1) %% <script>alert(1)</script> '
                      '"><img src=x onerror=alert(1)> end ; #quot; a\nb')
    assert "<script" not in text and "<img" not in text and "fetch.data-1[" not in text
    assert not any(line.strip().startswith("click") for line in text.splitlines())
