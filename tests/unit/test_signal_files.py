"""Reading signal files, without an agent: JSON limits, signal_ids, the repeat key, and
filing under names that fit."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from procctl.agent import bounded_json, signals


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.write_text(text, encoding="utf-8")
    if mtime_ns is not None:
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def test_a_new_file_on_a_freed_inode_gets_a_new_key(tmp_path: Path) -> None:
    """Same name, size and modification time; the second file is created right after
    the first was removed, so it usually gets its inode too. Other content, other key."""
    stamp = 1_700_000_000_000_000_000
    path = write(tmp_path / "a.json", '{"correlation_id": "c", "payload": 1}', stamp)
    first = signals.read_signal_file(path, 1000)
    inode = path.stat().st_ino
    path.unlink()
    path = write(tmp_path / "a.json", '{"correlation_id": "c", "payload": 2}', stamp)
    second = signals.read_signal_file(path, 1000)
    assert path.stat().st_size == len('{"correlation_id": "c", "payload": 1}')
    assert first.file_key != second.file_key, f"same inode: {path.stat().st_ino == inode}"


def test_the_same_file_read_again_has_the_same_key(tmp_path: Path) -> None:
    path = write(tmp_path / "a.json", '{"correlation_id": "c"}')
    assert signals.read_signal_file(path, 1000).file_key == \
        signals.read_signal_file(path, 1000).file_key


def test_the_same_content_written_again_later_is_another_signal(tmp_path: Path) -> None:
    text = '{"correlation_id": "c"}'
    first = signals.read_signal_file(write(tmp_path / "a.json", text, 10**18), 1000)
    second = signals.read_signal_file(write(tmp_path / "a.json", text, 10**18 + 1), 1000)
    assert first.file_key != second.file_key


@pytest.mark.parametrize(("text", "words"), [
    ("[" * 65 + "]" * 65, "nested deeper than 64 levels"),
    ("[" * 100_000, "nested deeper than 64 levels"),
    ("9" * 5000, "a number of 5000 characters; the limit is 100"),
    ("-0." + "1" * 200, "a number of 203 characters"),
    ("1e999", "out of range"),
    ("[NaN]", "NaN is not a JSON value"),
    ("-Infinity", "-Infinity is not a JSON value"),
    ('"\\udc00x"', "lone surrogate (\\udc00)"),
])
def test_json_beyond_the_limits_is_refused_with_the_limit_named(text: str, words: str) -> None:
    with pytest.raises(bounded_json.JSONLimit) as raised:
        bounded_json.loads(text)
    assert words in str(raised.value)


def test_json_within_the_limits_is_decoded() -> None:
    text = "[" * 64 + "]" * 64
    assert bounded_json.loads(text) is not None
    assert bounded_json.loads('{"a": "[[[[[[[[[[", "b": 1.5e300, "c": "\\ud83d\\ude00"}') == {
        "a": "[" * 10, "b": 1.5e300, "c": "\U0001f600"}
    assert bounded_json.loads("9" * 100) == int("9" * 100)


@pytest.mark.parametrize("value", ["../escape", "a/b", "", ".hidden", "-x", "a b",
                                   "x" * 129, "é"])
def test_signal_ids_outside_the_alphabet_are_refused(value: str) -> None:
    assert signals.signal_id_problem(value) is not None


@pytest.mark.parametrize("value", ["mail-4711", "a", "x" * 128, "child-ended:3f2a",
                                   "ada@example.org", "v1.2_3"])
def test_signal_ids_in_the_alphabet_are_accepted(value: str) -> None:
    assert signals.signal_id_problem(value) is None


def test_a_long_name_is_filed_under_a_shortened_one(tmp_path: Path) -> None:
    name = "é" * 120 + ".json"  # 245 bytes
    path = write(tmp_path / name, "{")
    target = signals.settle(path, "not JSON")
    assert target is not None and target.parent == tmp_path / "rejected"
    assert target.name.endswith(".json") and len(os.fsencode(target.name)) <= 200
    error = json.loads((target.parent / f"{target.name}.error.json").read_text())
    assert error["file"] == name and error["reason"] == "not JSON"


def test_a_name_that_is_not_utf8_is_filed_and_named_readably(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/bad-\xff.json"
    with open(raw, "wb") as handle:
        handle.write(b"{")
    path = Path(os.fsdecode(raw))
    target = signals.settle(path, "not JSON")
    assert target is not None
    error = json.loads((target.parent / f"{target.name}.error.json").read_text())
    assert error["file"] == "bad-\\xff.json"
