"""Every command's help shows boolean options as flags (``--json``), never ``--json BOOLEAN`` or a
``--x/--no-x`` pair the command did not ask for (in-process: one help per command, cheap)."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from codexgate.cli.main import app


def _command_paths(command: Any, path: list[str]) -> list[list[str]]:
    commands = getattr(command, "commands", None)  # a group (typer's own click or click's)
    if isinstance(commands, dict):
        return [p for name, sub in commands.items() for p in _command_paths(sub, [*path, name])]
    return [path]


def test_boolean_options_are_shown_as_flags() -> None:
    runner = CliRunner()
    paths = _command_paths(typer.main.get_command(app), [])
    assert ["demo"] in paths and ["serve"] in paths and ["keys", "list"] in paths
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert result.exit_code == 0, (path, result.output)
        assert "BOOLEAN" not in result.output, path
        if path != ["serve"]:  # serve lists its boolean settings as --x / --no-x on purpose
            assert "/--no-" not in result.output.replace(" ", ""), path
    keys_help = runner.invoke(app, ["keys", "list", "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"}).output
    assert "--json" in keys_help
