"""`procctl graph FILE`: Mermaid text when piped or asked for, a tree on a terminal.

No agent is involved: `graph` reads the file and draws it.
"""

from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios
from collections.abc import Callable
from pathlib import Path

from helpers import PROCCTL, REPO, SAMPLES, Procctl

WriteDefinition = Callable[..., Path]
APPROVAL = SAMPLES / "approval.toml"
WIDE = {"COLUMNS": "120"}

APPROVAL_CHECKPOINT = (
    '[/"checkpoint wait-for-answer<br>correlation: approval-{{ order }}<br>ttl: 7d<br>'
    'stores: amount, order"/]')
APPROVAL_TREE = """\
process approval (version 1)  params order, amount
├── task ask (log)
├── checkpoint wait-for-answer  correlation approval-{{ order }}  ttl 7d  stores amount, order
└── if decide: results['wait-for-answer'].payload.approved
    ├── then
    │   └── return approved
    └── else
        └── return rejected
"""


def test_mermaid_of_the_approval_sample(shared_procctl: Procctl) -> None:
    result = shared_procctl.ok("graph", APPROVAL, "--format", "mermaid")
    lines = result.out.splitlines()
    assert lines[0] == "flowchart TD"
    assert any(line.strip().endswith(APPROVAL_CHECKPOINT) for line in lines)
    assert "    n_start --> n0" in lines
    assert '    n2 -->|"results[\'wait-for-answer\'].payload.approved"| n3' in lines
    assert '    n2 -->|"else"| n4' in lines
    assert "    n3 --> n_end" in lines and "    n4 --> n_end" in lines
    assert any(line.startswith("    classDef checkpoint ") for line in lines)
    assert result.err == ""


def test_piped_output_is_mermaid_only(shared_procctl: Procctl) -> None:
    """`procctl graph f.toml > f.mmd` gives a file Mermaid can read: no tree, no note."""
    piped, asked = shared_procctl.many(("graph", APPROVAL),
                                       ("graph", APPROVAL, "--format", "mermaid"))
    assert piped.code == 0, str(piped)
    assert piped.out == asked.out
    assert piped.out.startswith("flowchart TD\n") and piped.out.endswith("\n")
    assert piped.err == ""


def test_output_writes_a_markdown_fence_or_plain_text(shared_procctl: Procctl,
                                                      tmp_path: Path) -> None:
    markdown, plain = tmp_path / "approval.md", tmp_path / "approval.mmd"
    mermaid, wrote_md, wrote_mmd = shared_procctl.many(
        ("graph", APPROVAL, "--format", "mermaid"),
        ("graph", APPROVAL, "--output", markdown),
        ("graph", APPROVAL, "-o", plain))
    assert wrote_md.code == 0, str(wrote_md)
    assert markdown.read_text(encoding="utf-8") == f"```mermaid\n{mermaid.out}```\n"
    assert plain.read_text(encoding="utf-8") == mermaid.out
    assert f"to {markdown}" in " ".join(wrote_md.out.split())
    assert "process approval" in wrote_md.out
    assert f"to {plain}" in " ".join(wrote_mmd.out.split())


def test_output_to_a_missing_directory_is_an_error(shared_procctl: Procctl,
                                                   tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "x.md"
    result = shared_procctl("graph", APPROVAL, "--output", target)
    assert result.code == 2, str(result)
    assert result.err.startswith(f"Error: cannot write {target}: No such file or directory")
    assert not target.exists()


def test_tree_of_the_approval_sample(shared_procctl: Procctl) -> None:
    result = shared_procctl.ok("graph", APPROVAL, "--format", "tree", env=WIDE)
    assert result.out == APPROVAL_TREE
    assert result.err == ""


def test_tree_prints_user_text_as_written(shared_procctl: Procctl,
                                         write_definition: WriteDefinition) -> None:
    """Conditions and templates are not read as rich markup."""
    path = write_definition("""\
[process]
name = "markup"

[process.params.tag]
type = "str"
default = "[bold]"

[[steps]]
id = "check"
kind = "if"
condition = "tag == '[bold]x[/bold]' and results | length < 3"
[[steps.then]]
id = "wait"
kind = "checkpoint"
correlation_id = "[red]{{ tag }}[/red]"
[[steps.then]]
id = "stop"
kind = "throw"
message = "[/] {{ tag }}"
""")
    result = shared_procctl.ok("graph", path, "--format", "tree", env=WIDE)
    assert result.out.splitlines() == [
        "process markup  params tag",
        "└── if check: tag == '[bold]x[/bold]' and results | length < 3",
        "    └── then",
        "        ├── checkpoint wait  correlation [red]{{ tag }}[/red]  ttl none  "
        "stores tag",
        "        └── throw stop: [/] {{ tag }}",
    ]
    mermaid = shared_procctl.ok("graph", path).out
    assert '-->|"tag == \'[bold]x[/bold]\' and results #124; length #60; 3"|' in mermaid
    assert '"throw stop<br>[/] {{ tag }}"' in mermaid


def test_on_a_terminal_the_default_is_the_tree(shared_procctl: Procctl) -> None:
    """Run under a pseudo-terminal, as in an interactive shell, with colour on."""
    main, child = pty.openpty()
    # 40 lines of 120 columns, and a terminal that is not "dumb" (rich makes those 80 wide)
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**shared_procctl.env, **WIDE, "TERM": "xterm"}
    env.pop("NO_COLOR")
    proc = subprocess.Popen([PROCCTL, "graph", "samples/approval.toml"], cwd=REPO, env=env,
                            stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE,
                            text=True)
    os.close(child)
    chunks: list[bytes] = []
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the command closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    out = b"".join(chunks).decode().replace("\r\n", "\n")
    assert re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out) == APPROVAL_TREE
    # in colour, the checkpoint stands out
    assert re.search(r"\x1b\[[0-9;]+mcheckpoint wait-for-answer\x1b\[0m", out), out
    assert "flowchart" not in out
    assert " ".join(err.split()) == (
        "For a Mermaid flowchart: procctl graph samples/approval.toml --format mermaid "
        "(or --output approval.md)")


def test_an_invalid_definition_exits_3(shared_procctl: Procctl,
                                       write_definition: WriteDefinition,
                                       tmp_path: Path) -> None:
    path = write_definition("""\
[process]
name = "broken"

[[steps]]
id = "greet"
kind = "tsak"
""")
    output = tmp_path / "broken.md"
    invalid, missing, written = shared_procctl.many(
        ("graph", path), ("graph", tmp_path / "nope.toml", "--format", "tree"),
        ("graph", path, "--output", output))
    assert invalid.code == 3, str(invalid)
    assert invalid.out == ""
    assert invalid.err.splitlines() == [
        f"Error: {path}:6: steps[0] (id 'greet'): unknown step kind 'tsak'",
        "Hint: did you mean 'task'?"]
    assert missing.code == 3, str(missing)
    assert missing.err.startswith(f"Error: {tmp_path / 'nope.toml'}: no such file")
    assert written.code == 3 and not output.exists()


def test_bad_options_exit_2(shared_procctl: Procctl, tmp_path: Path) -> None:
    bad_format, tree_to_file = shared_procctl.many(
        ("graph", APPROVAL, "--format", "svg"),
        ("graph", APPROVAL, "--format", "tree", "--output", tmp_path / "x.md"))
    assert bad_format.code == 2, str(bad_format)
    assert "'svg' is not one of tree, mermaid" in bad_format.err
    assert tree_to_file.code == 2, str(tree_to_file)
    assert "--output writes the Mermaid flowchart" in " ".join(tree_to_file.err.split())
    assert not (tmp_path / "x.md").exists()
