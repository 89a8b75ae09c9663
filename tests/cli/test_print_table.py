"""``print_table``: no cell's word is cut, at the narrowest width that allows it, found without bisecting."""

from __future__ import annotations

import io

import pytest
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from codexgate.cli import common


def _table(rows: int) -> Table:
    table = Table(title="settings")
    for name in ("name", "value", "env / flag"):
        table.add_column(name, overflow="ellipsis")
    table.add_column("meaning", min_width=20)
    for index in range(rows):
        name = f"setting_number_{index}_" + "x" * (index % 7)
        table.add_row(
            name,
            "https://example.invalid/" + "p" * (index % 11),
            f"CODEXGATE_{name.upper()} / --{name.replace('_', '-')}",
            "what this setting means, in several plain words " * (1 + index % 3),
        )
    return table


def _words(table: Table) -> set[str]:
    return {word for column in table.columns for cell in [column.header, *column.cells] for word in str(cell).split()}


def _printed(table: Table, width: int, capsys: pytest.CaptureFixture[str]) -> str:
    common.print_table(table, Console(width=width, file=io.StringIO(), no_color=True))
    return capsys.readouterr().out


def _whole_at(table: Table, width: int) -> bool:
    probe = Console(width=width, no_color=True, color_system=None, record=True, file=io.StringIO())
    probe.print(table, crop=False)
    rendered = probe.export_text()
    return max(cell_len(line) for line in rendered.splitlines()) <= width and _words(table) <= set(rendered.split())


@pytest.mark.parametrize("terminal", [40, 100, 400])
def test_every_word_is_whole_at_the_narrowest_width(terminal: int, capsys: pytest.CaptureFixture[str]) -> None:
    table = _table(12)
    printed = _printed(table, terminal, capsys)
    assert _words(table) <= set(printed.split())
    assert "…" not in printed
    width = max(cell_len(line) for line in printed.splitlines())
    if width > terminal:  # printed wider than the terminal: one column narrower would cut a word
        assert not _whole_at(_table(12), width - 1)


def test_the_computed_width_matches_the_bisected_one(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = _printed(_table(20), 60, capsys)
    monkeypatch.setattr(common, "_narrowest_whole_width", lambda *args: None)  # rich's internals changed
    bisected = _printed(_table(20), 60, capsys)
    assert computed == bisected
    assert max(cell_len(line) for line in computed.splitlines()) > 60  # the case did need a wider table
