"""Lines written without rich are the characters rich would write; a table is rendered once, as rich prints it.

``common.err_console`` / ``common.console`` write a plain line themselves (no rich console made), and
``print_error`` does when stderr shows no colour; ``print_table`` writes the render that confirmed its
width. Each is compared with what rich itself writes for the same call.
"""

from __future__ import annotations

import io

import pytest
from rich.console import Console
from rich.table import Table
from rich.text import Text

from codexgate.cli import common
from codexgate.cli.safe_text import plain

LINES = [
    "Admin password removed: the console is off.",
    "a path /tmp/x y [red]not markup[/red] and a bell\x07, a CR\r and a form feed\x0c",
    "a very long line " * 20,
    "ünïcödé ✓ 名前",
]


def _rich_writes(*objects: object, stderr: bool = False, **options: object) -> str:
    buffer = io.StringIO()
    Console(file=buffer, highlight=False, emoji=False, stderr=stderr, width=80).print(*objects, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


@pytest.mark.parametrize("line", LINES)
def test_a_plain_line_is_what_rich_writes(line: str, capsys: pytest.CaptureFixture[str]) -> None:
    fresh = common._DeferredConsole(stderr=True, highlight=False, emoji=False)
    fresh.print(line, markup=False, soft_wrap=True)
    assert fresh._console is None  # written without rich's console
    assert capsys.readouterr().err == _rich_writes(line, markup=False, soft_wrap=True)


def test_text_without_brackets_needs_no_markup_flag(capsys: pytest.CaptureFixture[str]) -> None:
    fresh = common._DeferredConsole(highlight=False, emoji=False)
    fresh.print("No rate-limit windows seen yet.", soft_wrap=True)
    assert fresh._console is None
    assert capsys.readouterr().out == _rich_writes("No rate-limit windows seen yet.", soft_wrap=True)


@pytest.mark.parametrize(
    ("objects", "options"),
    [
        (("[bold]markup[/bold] read",), {"soft_wrap": True}),  # markup: rich must read it
        (("wrapped at the width " * 10,), {"markup": False}),  # no soft_wrap: rich wraps
        ((Text("a Text"),), {"soft_wrap": True}),  # not a string
        (("a\ttab",), {"soft_wrap": True, "markup": False}),  # rich expands tabs
        (("styled",), {"soft_wrap": True, "style": "red"}),
    ],
)
def test_anything_else_goes_through_rich(objects: tuple[object, ...], options: dict[str, object]) -> None:
    fresh = common._DeferredConsole(highlight=False, emoji=False, file=io.StringIO(), width=80)
    fresh.print(*objects, **options)
    assert fresh._console is not None


def test_a_console_that_highlights_always_uses_rich() -> None:
    fresh = common._DeferredConsole(file=io.StringIO())  # rich's defaults: highlight, emoji codes
    fresh.print("42 :smile:", markup=False, soft_wrap=True)
    assert fresh._console is not None


def test_an_error_without_colour_is_the_line_rich_writes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.delenv("TTY_COMPATIBLE", raising=False)
    message = "no key named 'x\x1b[2J'\nsecond line"
    common.print_error(message)
    written = capsys.readouterr().err
    styled = Text("error:", style="red") + " " + plain(message, 4000, keep_newlines=True)
    expected = _rich_writes(styled, soft_wrap=True)
    assert written == expected
    assert "\\x1b[2J" in written  # the escape shown, not sent


def test_an_error_on_a_colour_terminal_is_red(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(common, "err_console", common._DeferredConsole(stderr=True, highlight=False, emoji=False))
    common.print_error("no admin password is stored")
    assert capsys.readouterr().err.startswith("\x1b[31merror: no admin password is stored")


def _table() -> Table:
    table = Table(title="codexgate settings")
    for name in ("setting", "value", "meaning"):
        table.add_column(name)
    for index in range(8):
        table.add_row(f"setting_{index}", "x" * (index * 3), "what it means, in a few words " * (index % 3 + 1))
    return table


@pytest.mark.parametrize("colour", [False, True])
def test_a_table_is_written_as_rich_prints_it(
    colour: bool, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The computed width's single render (written as it is) against the bisection, which prints through rich.
    if colour:
        monkeypatch.setenv("FORCE_COLOR", "1")
    else:
        monkeypatch.delenv("FORCE_COLOR", raising=False)
    common.print_table(_table(), Console(width=50, file=io.StringIO()))
    computed = capsys.readouterr().out
    monkeypatch.setattr(common, "_narrowest_whole_width", lambda *args: None)
    common.print_table(_table(), Console(width=50, file=io.StringIO()))
    printed = capsys.readouterr().out
    assert computed == printed
    assert ("\x1b[" in computed) is colour  # the title's style, on a colour terminal only
