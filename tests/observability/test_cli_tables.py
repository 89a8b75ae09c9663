"""CLI output: data is never read as rich markup, and terminal escapes / line breaks show escaped."""

from __future__ import annotations

import io
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table
from typer.testing import CliRunner

from codexgate.cli.main import app
from codexgate.cli.safe_text import CELL_LIMIT, plain
from codexgate.storage import rate_limits
from codexgate.storage.usage_writer import UsageRecord, UsageWriter

HOSTILE_MODEL = "[red]evil[/red]\x1b[2J\r\nFAKE"
HOSTILE_KEY = "[bold]k[/bold]\x1b]0;t\x07"


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"CODEXGATE_HOME": str(home), "CODEXGATE_CONFIG": ""})
    return result.exit_code, result.stdout, result.stderr


def _no_raw_controls(text: str) -> bool:
    return not any(char in text for char in "\x1b\x07\r\x85\u2028")


def test_stats_tables_show_hostile_names_literally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    writer = UsageWriter(home / "usage.db")
    writer.open()
    writer.submit(
        UsageRecord(endpoint="/v1/chat/completions", status=200, key_name=HOSTILE_KEY, model_requested=HOSTILE_MODEL)
    )
    writer.close()
    rate_limits.save(
        home / "rate_limits.json",
        {
            "primary": {"used_percent": "[blink]9[/blink]", "window_minutes": "\x1b[31m300"},
            "plan_type": "[red]pro[/red]\nFAKE",
            "observed_at": time.time(),
        },
    )
    code, stdout, stderr = invoke(home, "stats")
    assert code == 0, stderr
    assert "[red]evil[/red]\\x1b[2J\\r\\nFAKE" in stdout  # markup as text, controls escaped, one line
    assert "[bold]k[/bold]\\x1b]0;t\\x07" in stdout
    assert "[blink]9[/blink]" in stdout and "\\x1b[31m300" in stdout
    assert "(plan: [red]pro[/red]\\nFAKE)" in stdout
    assert _no_raw_controls(stdout)
    assert not any(line.lstrip().startswith("FAKE") for line in stdout.splitlines())


def test_error_messages_are_literal(tmp_path: Path) -> None:
    code, _, stderr = invoke(tmp_path / "home", "keys", "revoke", "[red]x[/red]\x1b[2J")
    assert code == 1
    assert "error:" in stderr and "[red]x[/red]\\x1b[2J" in stderr and _no_raw_controls(stderr)


def test_plain_is_literal_escaped_and_bounded() -> None:
    table = Table()
    table.add_column("model")
    table.add_row(plain("[red]a[/red]\x1b[0m\tb\u2028c"))
    table.add_row(plain("x" * 10_000))
    buffer = io.StringIO()
    Console(file=buffer, width=400, color_system=None).print(table)
    output = buffer.getvalue()
    assert "[red]a[/red]\\x1b[0m\\tb\\u2028c" in output
    assert "x" * CELL_LIMIT + "…" in output and "x" * (CELL_LIMIT + 1) not in output
    assert plain(None).plain == "-" and plain("two\nlines", keep_newlines=True).plain == "two\nlines"


def test_keys_list_shows_a_markup_name_literally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, _, stderr = invoke(home, "keys", "create", "--name", "[red]ops[/red]")
    assert code == 0, stderr
    code, stdout, stderr = invoke(home, "keys", "list")
    assert code == 0, stderr
    assert "[red]ops[/red]" in stdout
