"""tests/cli_doc.py: how docs/cli.md's examples say what they show, and the masking that
makes two runs' output comparable."""

from __future__ import annotations

import pytest
from cli_doc import CLI_MD, DocError, blocks, normalise, parse_command, shown_in

DOC = """# procctl run

```
procctl run FILE [--wait]
             [--json]
```

<!-- output: procctl run samples/hello.toml --wait -->
```
hello instance ad24ecbd2350
completed in 0.04s
```

<!-- output: tables list-80 -->
```
INSTANCE  PROCESS
```

<!-- output: not checked (needs a full disk) -->
```json
{"state": "waiting_for_disk"}
```
"""


def test_each_block_says_how_it_is_checked() -> None:
    found = blocks(DOC)
    assert [(b.line, b.kind) for b in found] == [
        (3, "synopsis"), (9, "run"), (15, "elsewhere"), (20, "not-checked")]
    run = found[1]
    assert run.command is not None and run.command.args == ["run", "samples/hello.toml",
                                                            "--wait"]
    assert run.body == "hello instance ad24ecbd2350\ncompleted in 0.04s\n"
    assert found[2].group == "tables list-80"
    assert (found[3].info, found[3].why) == ("json", "needs a full disk")


def test_an_example_without_a_comment_is_refused_with_its_line() -> None:
    with pytest.raises(DocError, match=r"docs/cli.md:3: an example with no `<!-- output"):
        blocks("text\n\n```\nStarted 7a4f87adb3a1 (orders)\n```\n")


def test_an_indented_example_is_refused_and_a_list_continuation_is_not() -> None:
    with pytest.raises(DocError, match=r"docs/cli.md:3: an indented example"):
        blocks("It prints:\n\n    procctl ui for the home /h:\n    http://127.0.0.1:1/\n")
    listed = "- **A paused instance** is cancelled\n\n    in the store.\n"
    assert blocks(listed) == []


@pytest.mark.parametrize(("comment", "message"), [
    ("not checked", "say why"),
    ("procctl list; colour", "unknown word 'colour'"),
    ("list --json", "names a `procctl ...` command"),
    ("ghosts spooky", "names a `procctl ...` command"),  # not a group CHECKED_BY knows
    ("procctl show 'unclosed", "cannot be read"),
])
def test_a_comment_that_cannot_be_read_is_refused(comment: str, message: str) -> None:
    with pytest.raises(DocError, match=message):
        blocks(f"<!-- output: {comment} -->\n```\nx\n```\n")


def test_the_command_its_environment_streams_and_words() -> None:
    both = parse_command("COLUMNS=80 procctl explain {paused}", "here")
    assert (both.env, both.args, both.stream, both.exit, both.tty) == (
        {"COLUMNS": "80"}, ["explain", "{paused}"], "both", 0, False)
    err = parse_command("procctl show 5f42 >/dev/null; exit 5", "here")
    assert (err.args, err.stream, err.exit) == (["show", "5f42"], "err", 5)
    out = parse_command("procctl graph f.toml 2>/dev/null; tty", "here")
    assert (out.stream, out.tty) == ("out", True)
    shape = parse_command("procctl resume -c x --json; without instance, signal", "here")
    assert (shape.stream, shape.without) == ("out", ("instance", "signal"))


def test_what_varies_is_masked_the_same_way_on_both_sides() -> None:
    doc = ("Instance 7c5ad05b452b started 2026-11-26 02:31:18 (in 6d 23h), "
           "at 2026-11-26T02:31:17.206177+00:00, 12:01:02, took 2.65s, 542 bytes")
    real = ("Instance 39f6c04d077e started 2026-12-02 15:14:40 (in 6d 22h), "
            "at 2026-12-02T15:14:40.788948+00:00, 15:14:40, took 0.53s, 505 bytes")
    assert normalise(doc) == normalise(real) == (
        "Instance <ID> started <TIME> (<RELATIVE>), at <TIME>, <TIME>, took <DURATION>, "
        "<SIZE>")
    assert normalise("a    b   \n") == "a  b"  # runs of spaces, line ends
    assert normalise("/tmp/x/home/signals", {"/tmp/x/home": "/home/ada"}) == \
        "/home/ada/signals"
    assert normalise("order A-17") != normalise("order A-18")  # not everything is masked


def test_a_dots_line_stands_for_any_lines() -> None:
    assert shown_in(["a", "...", "d"], ["a", "b", "c", "d"])
    assert shown_in(["a", "...", "b"], ["a", "b"])
    assert shown_in(["...", "c"], ["a", "b", "c"])
    assert not shown_in(["a", "...", "d"], ["a", "b", "c"])
    assert not shown_in(["a", "b"], ["a", "b", "c"])


def test_docs_cli_md_reads() -> None:
    """Every block of the real page is a synopsis or says how it is checked (the e2e
    test compares them)."""
    found = blocks(CLI_MD.read_text(encoding="utf-8"))
    assert {b.kind for b in found} == {"synopsis", "run", "elsewhere", "not-checked"}
