"""Drawing a definition: the Mermaid flowchart follows execution order, and is valid.

No Mermaid renderer runs here, so `check_mermaid` below reads the text the way the
flowchart grammar does for the subset `mermaid()` writes (node declarations with a quoted
label, edges with an optional quoted label, subgraph ... end, classDef and class lines)
and reports anything else: undeclared ids, unbalanced subgraphs, unsafe ids or labels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from procctl.agent.definition import Definition, load_definition, parse_definition
from procctl.agent.definition.fields import KIND_FIELDS
from procctl.agent.definition.graph import END, FAILED, START, mermaid, mermaid_text, tree

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"

# --- a reader of the Mermaid subset --------------------------------------------------------

_ID = r"[A-Za-z][A-Za-z0-9_]*"
# opening -> closing of every classic flowchart shape, around a quoted label
_SHAPES = {"(((": ")))", "((": "))", "([": "])", "[[": "]]", "[/": ("/]", "\\]"),
           "[\\": ("\\]", "/]"), "[": "]", "(": ")", "{{": "}}", "{": "}", ">": "]"}
_OPEN = "|".join(re.escape(o) for o in sorted(_SHAPES, key=len, reverse=True))
_CLOSE = "|".join(re.escape(c) for c in sorted(
    {c for v in _SHAPES.values() for c in ((v,) if isinstance(v, str) else v)},
    key=len, reverse=True))
NODE = re.compile(rf'^(?P<id>{_ID})(?P<open>{_OPEN})"(?P<label>[^"]*)"(?P<close>{_CLOSE})$')
EDGE = re.compile(rf'^(?P<src>{_ID}) (?P<arrow>-->|-\.->)(?:\|"(?P<label>[^"]*)"\|)? '
                  rf"(?P<dst>{_ID})$")
SUBGRAPH = re.compile(rf'^subgraph (?P<id>{_ID}) \["(?P<label>[^"]*)"\]$')
CLASSDEF = re.compile(r"^classDef (?P<name>[a-z]+) (?P<style>[a-z-]+:[#\w]+(,[a-z-]+:[#\w]+)*)$")
CLASS = re.compile(rf"^class (?P<ids>{_ID}(,{_ID})*) (?P<name>[a-z]+)$")
# Mermaid entity codes: #quot; #35; ... Raw < and > only in the <br> line breaks.
_ENTITY = re.compile(r"#(\w+);")
RESERVED = {"end", "subgraph", "graph", "flowchart", "class", "classDef", "style",
            "click", "default", "linkStyle"}


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str | None
    dotted: bool


@dataclass
class Chart:
    nodes: dict[str, str] = field(default_factory=dict)  # id -> label, with <br> as \n
    shapes: dict[str, str] = field(default_factory=dict)  # id -> opening
    subgraphs: dict[str, str] = field(default_factory=dict)  # id -> title
    members: dict[str, str] = field(default_factory=dict)  # node id -> innermost subgraph
    edges: list[Edge] = field(default_factory=list)
    classes: dict[str, set[str]] = field(default_factory=dict)
    classdefs: set[str] = field(default_factory=set)

    def node(self, first_line: str) -> str:
        """The id of the one node whose label starts with this line."""
        found = [i for i, label in self.nodes.items() if label.split("\n")[0] == first_line]
        assert len(found) == 1, (first_line, self.nodes)
        return found[0]

    def out(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.src == node_id]

    def into(self, node_id: str) -> list[Edge]:
        return [e for e in self.edges if e.dst == node_id]

    def targets(self, node_id: str) -> dict[str, str | None]:
        return {e.dst: e.label for e in self.out(node_id)}

    def reachable(self, start: str = START) -> set[str]:
        """The nodes reached from `start`; an edge from a subgraph (an error leading to
        catch) counts once a node inside it is reached."""
        seen = {start}
        todo = [start]
        while todo:
            current = todo.pop()
            sources = [current]
            while sources[-1] in self.members:
                sources.append(self.members[sources[-1]])
            for edge in (e for source in sources for e in self.out(source)):
                if edge.dst not in seen:
                    seen.add(edge.dst)
                    todo.append(edge.dst)
        return seen & set(self.nodes)


def _label(raw: str, problems: list[str], where: str) -> str:
    for code in _ENTITY.findall(raw):
        if not (code.isdigit() or code == "quot"):
            problems.append(f"{where}: unknown entity #{code};")
    if "#" in _ENTITY.sub("", raw):
        problems.append(f"{where}: a # that does not start an entity code: {raw!r}")
    if re.search(r"<(?!br>)|(?<!<br)>", raw):
        problems.append(f"{where}: raw < or > in {raw!r}")
    text = raw.replace("<br>", "\n").replace("#quot;", '"')
    return _ENTITY.sub(lambda m: chr(int(m[1])), text)


def check_mermaid(text: str) -> tuple[Chart, list[str]]:
    """Read a flowchart; the problems list is empty when it is well formed."""
    chart = Chart()
    problems: list[str] = []
    lines = text.split("\n")
    if lines[0] != "flowchart TD":
        problems.append(f"line 1 is {lines[0]!r}, not 'flowchart TD'")
    if text.endswith("\n"):
        lines = lines[:-1]
    stack: list[str] = []
    for number, raw in enumerate(lines[1:], start=2):
        line = raw.strip()
        where = f"line {number}"
        if match := NODE.match(line):
            opening, closing = match["open"], match["close"]
            allowed = _SHAPES[opening]
            if closing not in ((allowed,) if isinstance(allowed, str) else allowed):
                problems.append(f"{where}: shape {opening} closed by {closing}")
            node_id = match["id"]
            if node_id in chart.nodes or node_id in chart.subgraphs:
                problems.append(f"{where}: {node_id} declared twice")
            chart.nodes[node_id] = _label(match["label"], problems, where)
            chart.shapes[node_id] = opening
            if stack:
                chart.members[node_id] = stack[-1]
        elif match := EDGE.match(line):
            chart.edges.append(Edge(match["src"], match["dst"],
                                    None if match["label"] is None
                                    else _label(match["label"], problems, where),
                                    match["arrow"] == "-.->"))
        elif match := SUBGRAPH.match(line):
            graph_id = match["id"]
            if graph_id in chart.nodes or graph_id in chart.subgraphs:
                problems.append(f"{where}: {graph_id} declared twice")
            chart.subgraphs[graph_id] = _label(match["label"], problems, where)
            if stack:
                chart.members[graph_id] = stack[-1]
            stack.append(graph_id)
        elif line == "end":
            if not stack:
                problems.append(f"{where}: end without subgraph")
            else:
                stack.pop()
        elif match := CLASSDEF.match(line):
            chart.classdefs.add(match["name"])
        elif match := CLASS.match(line):
            chart.classes.setdefault(match["name"], set()).update(match["ids"].split(","))
        else:
            problems.append(f"{where}: not a line of the flowchart subset: {raw!r}")
    if stack:
        problems.append(f"subgraphs left open: {stack}")
    declared = set(chart.nodes) | set(chart.subgraphs)
    for name in declared:
        if name.lower() in {r.lower() for r in RESERVED} or name[0] in "ox":
            problems.append(f"{name} is a keyword or starts an o/x edge")
    for edge in chart.edges:
        for end in (edge.src, edge.dst):
            if end not in declared:
                problems.append(f"edge {edge.src} -> {edge.dst}: {end} is not declared")
    for name, ids in chart.classes.items():
        if name not in chart.classdefs:
            problems.append(f"class {name} has no classDef")
        problems.extend(f"class {name}: {i} is not declared" for i in ids - set(chart.nodes))
    return chart, problems


def chart_of(definition: Definition) -> Chart:
    chart, problems = check_mermaid(mermaid(definition))
    assert not problems, "\n".join(problems) + "\n\n" + mermaid(definition)
    return chart


# --- definitions ------------------------------------------------------------------------

CHILD = """\
[process]
name = "child"
[process.params.n]
type = "int"
[[steps]]
id = "twice"
kind = "return"
value = "{{ n * 2 }}"
"""

EVERY_KIND = """\
[process]
name = "every-kind"
[process.params.amount]
type = "int"
default = 5
[process.params.label]
type = "str"
default = "x"

[[steps]]
id = "fetch.data"
task = "log"
with = { message = "start" }
timeout = "5s"
retry = { attempts = 3 }

[[steps]]
id = "init"
kind = "set"
values = { total = 0 }

[[steps]]
id = "wait-for-answer"
kind = "checkpoint"
correlation_id = "approval-{{ label }}"
ttl = "7d"

[[steps]]
id = "decide"
kind = "if"
condition = 'label == "say \\"hi\\"" and amount < 10'
[[steps.then]]
id = "big"
kind = "set"
values = { tier = "gold" }
[[steps.else]]
id = "small"
kind = "set"
values = { tier = "tin" }

[[steps]]
id = "route"
kind = "switch"
[[steps.cases]]
name = "large"
when = "amount > 1000"
[[steps.cases.do]]
id = "too-big"
kind = "throw"
message = "too big: {{ amount }}"
[[steps.cases]]
when = "amount > 100"
[[steps.cases.do]]
id = "medium"
task = "log"
with = { message = "medium" }
[[steps.default]]
id = "tiny"
task = "log"
with = { message = "tiny" }

[[steps]]
id = "extras"
kind = "inclusive"
[[steps.branches]]
name = "audit"
when = "amount > 1"
[[steps.branches.do]]
id = "audit-log"
task = "log"
with = { message = "audit" }
[[steps.branches]]
name = "notify"
when = "amount > 2"
[[steps.branches.do]]
id = "notify-log"
task = "log"
with = { message = "notify" }

[[steps]]
id = "fan"
kind = "parallel"
max_concurrency = 2
[[steps.branches]]
name = "left"
[[steps.branches.do]]
id = "left-work"
task = "log"
with = { message = "left" }
[[steps.branches]]
name = "right"
[[steps.branches.do]]
id = "right-return"
kind = "return"
value = 1

[[steps]]
id = "each"
kind = "foreach"
items = "[1, 2, 3]"
as = "item"
[[steps.body]]
id = "skip-odd"
kind = "if"
condition = "item % 2"
[[steps.body.then]]
id = "next"
kind = "return"
value = 0
[[steps.body]]
id = "add"
kind = "set"
values = { total = "{{ total + item }}" }

[[steps]]
id = "poll"
kind = "while"
condition = "i < 3"
max_iterations = 10
index_as = "i"
[[steps.body]]
id = "tick"
task = "log"
with = { message = "tick {{ i }}" }

[[steps]]
id = "guarded"
kind = "scope"
error_as = "err"
[[steps.do]]
id = "risky"
kind = "throw"
message = "boom"
[[steps.catch]]
id = "handle"
task = "log"
with = { message = "{{ err.message }}" }
[[steps.finally]]
id = "cleanup"
task = "log"
with = { message = "cleanup" }

[[steps]]
id = "kid"
kind = "call"
file = "child.toml"
params = { n = "{{ amount }}" }

[[steps]]
id = "ack"
kind = "intermediate_return"
value = { accepted = true }

[[steps]]
id = "ping"
kind = "signal"
correlation_id = "other-{{ label }}"
payload = { hello = true }

[[steps]]
id = "watch"
kind = "checkpoint"
continue = true

[[steps]]
id = "again"
kind = "if"
condition = "amount > 3"
[[steps.then]]
id = "later"
kind = "scheduled_resume"
after = "1h"
max_iterations = 3

[[steps]]
id = "done"
kind = "return"
value = { total = "{{ total }}", tier = "{{ tier }}" }
"""


@pytest.fixture
def every_kind(tmp_path: Path) -> Definition:
    (tmp_path / "child.toml").write_text(CHILD, encoding="utf-8")
    path = tmp_path / "every-kind.toml"
    path.write_text(EVERY_KIND, encoding="utf-8")
    return load_definition(path)


def sample(name: str) -> Definition:
    return load_definition(SAMPLES / name)


# --- the checker itself -----------------------------------------------------------------


def test_the_checker_finds_broken_flowcharts() -> None:
    good = ('flowchart TD\n    a["x"]\n    subgraph s0 ["t"]\n        b(["y"])\n    end\n'
            "    a --> b\n    s0 -.->|\"e\"| a\n")
    assert check_mermaid(good)[1] == []
    broken = {
        "undeclared": good + "    a --> c\n",
        "unbalanced": good.replace("    end\n", ""),
        "stray end": good + "end\n",
        "raw quote": good.replace('"x"', '"say "hi""'),
        "unsafe id": good.replace('a["x"]', 'fetch.data["x"]'),
        "keyword id": good.replace('a["x"]', 'end["x"]').replace("a --> b", "end --> b"),
        "o edge": good.replace('b(["y"])', 'ops(["y"])').replace("a --> b", "a --> ops"),
        "shape": good.replace('a["x"]', 'a["x")'),
        "bare #": good.replace('"x"', '"a # b"'),
        "raw <": good.replace('"x"', '"a < b"'),
        "class": good + "    class a checkpoint\n",
    }
    for name, text in broken.items():
        assert check_mermaid(text)[1], name


# --- the flowchart ------------------------------------------------------------------------


def test_every_step_kind_is_drawn_as_valid_mermaid(every_kind: Definition) -> None:
    kinds = {step.kind for step in every_kind.all_steps()}
    assert kinds == set(KIND_FIELDS), "the test definition should use every kind"
    chart = chart_of(every_kind)
    # one node per step (a subgraph for a scope), named by its kind and id
    for step in every_kind.all_steps():
        titles = chart.subgraphs.values() if step.kind == "scope" else (
            label.split("\n")[0] for label in chart.nodes.values())
        assert sum(t.startswith(f"{step.kind} {step.id}") for t in titles) == 1, step.id
    assert {START, END, FAILED} <= set(chart.nodes)
    assert chart.reachable() >= set(chart.nodes) - {START}


def test_node_ids_are_generated_and_labels_escaped(every_kind: Definition) -> None:
    text = mermaid(every_kind)
    chart = chart_of(every_kind)
    assert all(re.fullmatch(r"n(\d+|_start|_end|_failed)", n) for n in chart.nodes)
    assert all(re.fullmatch(r"s\d+(_do|_catch|_finally)?", s) for s in chart.subgraphs)
    assert "fetch.data[" not in text and "wait-for-answer[" not in text
    decide = chart.node("if decide")
    [then] = [e for e in chart.out(decide) if e.label != "else"]
    # the condition, with its quotes and <, as written; in the text as entity codes
    assert then.label == 'label == "say \\"hi\\"" and amount < 10'
    assert '-->|"label == #quot;say \\#quot;hi\\#quot;#quot; and amount #60; 10"|' in text


def test_mermaid_text_escapes_what_ends_a_label() -> None:
    assert mermaid_text('a "b" #1 <i>|`x`&\ny') == (
        "a #quot;b#quot; #35;1 #60;i#62;#124;#96;x#96;#38;<br>y")


def test_approval_checkpoint_says_correlation_ttl_and_stores() -> None:
    chart = chart_of(sample("approval.toml"))
    node = chart.node("checkpoint wait-for-answer")
    assert chart.nodes[node].split("\n") == [
        "checkpoint wait-for-answer", "correlation: approval-{{ order }}", "ttl: 7d",
        "stores: amount, order"]
    assert chart.shapes[node] == "[/"
    assert node in chart.classes["checkpoint"] and "checkpoint" in chart.classdefs
    # it pauses: what follows runs when it is resumed
    assert chart.targets(node) == {chart.node("if decide"): "resumed"}


def test_approval_flowchart_in_order() -> None:
    chart = chart_of(sample("approval.toml"))
    ask = chart.node("task ask (log)")
    decide = chart.node("if decide")
    approved, rejected = chart.node("return approved"), chart.node("return rejected")
    assert chart.targets(START) == {ask: None}
    assert chart.targets(ask) == {chart.node("checkpoint wait-for-answer"): None}
    assert chart.targets(decide) == {
        approved: "results['wait-for-answer'].payload.approved", rejected: "else"}
    assert chart.targets(approved) == {END: None}
    assert chart.targets(rejected) == {END: None}
    assert chart.shapes[decide] == "{"
    assert FAILED not in chart.nodes  # nothing throws


def test_if_branches_join_at_the_next_step() -> None:
    chart = chart_of(sample("orders.toml"))
    classify = chart.node("if classify")
    large, warn = chart.node("set large: size"), chart.node("task warn (log)")
    small, done = chart.node("set small: size"), chart.node("return done")
    assert chart.targets(classify) == {large: "total > threshold", small: "else"}
    assert chart.targets(large) == {warn: None}
    assert {e.src for e in chart.into(done)} == {warn, small}
    assert chart.targets(done) == {END: None}


def test_an_if_without_else_goes_on_to_the_next_step() -> None:
    chart = chart_of(parse_definition("""\
[process]
name = "p"
[[steps]]
id = "check"
kind = "if"
condition = "1 > 0"
[[steps.then]]
id = "yes"
task = "log"
with = { message = "yes" }
[[steps]]
id = "after"
task = "log"
with = { message = "after" }
"""))
    check, after = chart.node("if check"), chart.node("task after (log)")
    assert chart.targets(check) == {chart.node("task yes (log)"): "1 > 0", after: "else"}
    assert chart.targets(chart.node("task yes (log)")) == {after: None}


def test_a_return_ends_its_path() -> None:
    chart = chart_of(parse_definition("""\
[process]
name = "p"
[[steps]]
id = "check"
kind = "if"
condition = "1 > 0"
[[steps.then]]
id = "early"
kind = "return"
value = 1
[[steps]]
id = "after"
task = "log"
with = { message = "after" }
[[steps]]
id = "bad"
kind = "throw"
message = "no"
"""))
    early, after = chart.node("return early"), chart.node("task after (log)")
    assert chart.targets(chart.node("if check")) == {early: "1 > 0", after: "else"}
    assert chart.targets(early) == {END: None}  # not on to `after`
    assert chart.shapes[early] == "(["
    bad = chart.node("throw bad")
    assert chart.nodes[bad] == "throw bad\nno"
    assert chart.targets(bad) == {FAILED: "throw"}
    assert chart.into(END) == [chart.out(early)[0]]


def test_decisions_loops_and_blocks(every_kind: Definition) -> None:
    chart = chart_of(every_kind)
    node = chart.node
    # switch: one edge per case, the default last; a throw in a case fails the process
    assert chart.targets(node("switch route")) == {
        node("throw too-big"): "large: amount > 1000",
        node("task medium (log)"): "2: amount > 100", node("task tiny (log)"): "default"}
    assert chart.targets(node("throw too-big")) == {FAILED: "throw"}
    # inclusive: every branch that holds, then a join (also when none holds)
    join = node("end of extras")
    assert chart.targets(node("inclusive extras")) == {
        node("task audit-log (log)"): "audit: amount > 1",
        node("task notify-log (log)"): "notify: amount > 2", join: "none holds"}
    assert chart.targets(node("task audit-log (log)")) == {join: None}
    # parallel: fork and join; a return ends its branch only
    fork, pjoin = node("parallel fan"), node("join fan")
    assert chart.nodes[fork] == "parallel fan\nat most 2 at once"
    assert chart.targets(fork) == {node("task left-work (log)"): "left",
                                   node("return right-return"): "right"}
    assert chart.targets(node("return right-return")) == {pjoin: None}
    assert chart.targets(node("task left-work (log)")) == {pjoin: None}
    # foreach: a back edge with the item, a return ends the iteration
    each = node("foreach each")
    assert chart.targets(pjoin) == {each: None}
    assert chart.nodes[each] == "foreach each\nitem in [1, 2, 3]"
    assert chart.targets(each) == {node("if skip-odd"): "each item",
                                   node("while poll: i < 3"): "done"}
    assert chart.targets(node("set add: total")) == {each: "next item"}
    assert chart.targets(node("return next")) == {each: "next item"}
    # while: the back edge is labelled with the condition
    poll = node("while poll: i < 3")
    assert chart.nodes[poll] == "while poll: i < 3\nat most 10 times (index i)"
    assert chart.targets(node("task tick (log)")) == {poll: "while i < 3"}
    assert chart.targets(poll)[node("throw risky")] == "done"


def test_scope_is_a_subgraph_with_catch_and_finally(every_kind: Definition) -> None:
    chart = chart_of(every_kind)
    node = chart.node
    [scope] = [s for s, title in chart.subgraphs.items() if title == "scope guarded"]
    assert {s: chart.subgraphs[s] for s, parent in chart.members.items()
            if parent == scope} == {f"{scope}_do": "do", f"{scope}_catch": "catch (err)",
                                    f"{scope}_finally": "finally"}
    risky, handle, cleanup = node("throw risky"), node("task handle (log)"), node(
        "task cleanup (log)")
    assert chart.members[risky] == f"{scope}_do"
    assert chart.members[handle] == f"{scope}_catch"
    assert chart.members[cleanup] == f"{scope}_finally"
    # any failure in do (and the throw) leads to catch, then finally, then on
    assert Edge(f"{scope}_do", handle, "error as err", True) in chart.edges
    assert chart.targets(risky) == {handle: "throw"}
    assert chart.targets(handle) == {cleanup: None}
    assert chart.targets(cleanup) == {node("call kid"): None}


def test_call_checkpoint_defaults_and_scheduled_resume(every_kind: Definition) -> None:
    chart = chart_of(every_kind)
    node = chart.node
    kid = node("call kid")
    assert chart.nodes[kid] == "call kid\nchild.toml (process child)"
    assert chart.shapes[kid] == "[["
    ack = node("intermediate_return ack")
    assert chart.targets(kid) == {ack: None}
    assert chart.targets(ack) == {node("signal ping"): None}  # the process goes on
    watch = node("checkpoint watch")
    assert chart.nodes[watch].split("\n") == [
        "checkpoint watch", "continues (no pause)", "correlation: <instance id>:watch",
        "ttl: none", "stores: amount, tier, total"]
    assert chart.classes["checkpoint"] == {watch, node("checkpoint wait-for-answer")}
    again, later, done = node("if again"), node("scheduled_resume later"), node("return done")
    assert chart.targets(watch) == {again: None}
    assert chart.targets(again) == {later: "amount > 3", done: "else"}
    # it pauses, then resumes from the checkpoint: its path does not go on to `done`
    assert chart.out(later) == [Edge(later, watch, "resume from checkpoint", True)]
    assert chart.into(done) == [Edge(again, done, "else", False)]


def test_checkpoint_with_no_variables_to_store() -> None:
    chart = chart_of(parse_definition("""\
[process]
name = "p"
[[steps]]
id = "wait"
kind = "checkpoint"
ttl = 90
[[steps]]
id = "bye"
task = "log"
with = { message = "bye" }
"""))
    assert chart.nodes[chart.node("checkpoint wait")].split("\n")[1:] == [
        "correlation: <instance id>:wait", "ttl: 1h 30m", "stores: no variables"]


def test_commit_and_recover_blocks() -> None:
    chart = chart_of(sample("reply.toml"))
    node = chart.node
    reply, work = node("checkpoint reply"), node("task work (sleep)")
    assert chart.targets(reply) == {node("task send-first (file.write)"): "commit",
                                    node("task send-again (file.write)"):
                                    "recover after a crash"}
    assert [e.dotted for e in chart.out(reply)] == [False, True]
    # a return in commit or recover ends that block, not the process
    assert chart.targets(node("return sunny-day")) == {work: None}
    assert chart.targets(node("return recovered-day")) == {work: None}


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.toml")))
def test_every_sample_draws_a_valid_connected_flowchart(name: str) -> None:
    chart = chart_of(sample(name))
    assert chart.reachable() == set(chart.nodes)
    assert END in chart.nodes


# --- the tree -------------------------------------------------------------------------------


def test_tree_of_approval() -> None:
    assert tree(sample("approval.toml")).lines() == [
        "process approval (version 1)  params order, amount",
        "  task ask (log)",
        "  checkpoint wait-for-answer  correlation approval-{{ order }}  ttl 7d  "
        "stores amount, order",
        "  if decide: results['wait-for-answer'].payload.approved",
        "    then",
        "      return approved",
        "    else",
        "      return rejected",
    ]


def test_tree_of_every_kind(every_kind: Definition) -> None:
    lines = tree(every_kind).lines()
    assert lines == [
        "process every-kind  params amount, label",
        "  task fetch.data (log)  timeout 5.00s  attempts 3",
        "  set init: total",
        "  checkpoint wait-for-answer  correlation approval-{{ label }}  ttl 7d  "
        "stores amount, label, total",
        "  if decide: label == \"say \\\"hi\\\"\" and amount < 10",
        "    then",
        "      set big: tier",
        "    else",
        "      set small: tier",
        "  switch route",
        "    case large: amount > 1000",
        "      throw too-big: too big: {{ amount }}",
        "    case 2: amount > 100",
        "      task medium (log)",
        "    default",
        "      task tiny (log)",
        "  inclusive extras",
        "    branch audit: amount > 1",
        "      task audit-log (log)",
        "    branch notify: amount > 2",
        "      task notify-log (log)",
        "  parallel fan (at most 2 at once)",
        "    branch left",
        "      task left-work (log)",
        "    branch right",
        "      return right-return",
        "  foreach each: item in [1, 2, 3]",
        "    if skip-odd: item % 2",
        "      then",
        "        return next",
        "    set add: total",
        "  while poll: i < 3 (index i)  at most 10 times",
        "    task tick (log)",
        "  scope guarded",
        "    do",
        "      throw risky: boom",
        "    catch (err)",
        "      task handle (log)",
        "    finally",
        "      task cleanup (log)",
        "  call kid: child.toml (process child)",
        "  intermediate_return ack",
        "  signal ping: to other-{{ label }}",
        "  checkpoint watch (continue)  correlation <instance id>:watch  ttl none  "
        "stores amount, tier, total",
        "  if again: amount > 3",
        "    then",
        "      scheduled_resume later: after 1h  at most 3 times",
        "  return done",
    ]
