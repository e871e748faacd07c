"""render.neutralise / safe_text: data reaches a terminal without control characters."""

from __future__ import annotations

from procctl.cli import render


def test_controls_become_visible_escapes() -> None:
    assert render.neutralise("\x1b[31mRED\x1b[0m\x07") == "\\x1b[31mRED\\x1b[0m\\x07"
    assert render.neutralise("ok\rFAKE\nLINE\tx") == "ok\\rFAKE\\nLINE\\tx"
    assert render.neutralise("\x00\x7f\x9b2J\x85") == "\\x00\\x7f\\x9b2J\\x85"
    assert render.neutralise("\u202egnp.exe\u2066\u2028") == "\\u202egnp.exe\\u2066\\u2028"


def test_ordinary_text_is_unchanged_and_neutralising_is_idempotent() -> None:
    text = "Grüße, 日本, C:\\temp\\x1b [bold] ✓ €"
    assert render.neutralise(text) == text
    once = render.neutralise("\x1b\r\n")
    assert render.neutralise(once) == once


def test_keep_newlines_keeps_only_line_feeds() -> None:
    assert render.neutralise("a\nb\rc", keep_newlines=True) == "a\nb\\rc"


def test_safe_text_also_escapes_markup() -> None:
    assert render.safe_text("[bold]x\x1b") == "\\[bold]x\\x1b"
    assert render.safe_text(None) == "None"


def test_value_text_neutralises_strings_and_json() -> None:
    assert render.value_text("a\x1bb\nc") == "a\\x1bb\\nc"
    shown = render.value_text({"k": "\x9b\u202e", "n": "x\ny"})
    assert "\x9b" not in shown and "\u202e" not in shown
    assert shown.count("\n") == 3  # the JSON layout only; the value's newline is \n
