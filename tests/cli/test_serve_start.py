"""``codexgate serve`` without typer: which command lines go straight to the server, and what they do."""

from __future__ import annotations

from pathlib import Path

import pytest

from codexgate.cli.common import GlobalOptions, hoist_global_options
from codexgate.cli.main import command_name
from codexgate.cli.serve_start import direct_serve_arguments, start_server


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve"], (None, {}, [])),
        (["serve", "--port", "9", "--allow-no-auth"], (None, {}, ["--port", "9", "--allow-no-auth"])),
        (["--home", "/h/", "serve", "--port=9"], (None, {"home": "/h"}, ["--port=9"])),
        (["serve", "--port", "9", "--config", "c.toml"], (Path("c.toml"), {}, ["--port", "9"])),
        (["serve", "--home=/a", "--home", "/b"], (None, {"home": "/b"}, [])),
    ],
)
def test_plain_serve_lines_go_direct(argv: list[str], expected: tuple[Path | None, dict[str, str], list[str]]) -> None:
    direct = direct_serve_arguments(hoist_global_options(argv))
    assert direct is not None
    options, rest = direct
    assert (options.config, options.flags, rest) == expected


@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "--help"],
        ["serve", "--port", "9", "-h"],
        ["--verbose", "serve"],
        ["serve", "--", "--port", "9"],
        ["--home=", "serve"],
        ["keys", "list"],
        ["--home", "/h"],
    ],
)
def test_other_lines_go_through_typer(argv: list[str]) -> None:
    assert direct_serve_arguments(hoist_global_options(argv)) is None


def test_command_name_skips_global_options_and_their_values() -> None:
    assert command_name(["--home", "serve", "keys", "list"]) == "keys"
    assert command_name(["--config=x.toml", "serve"]) == "serve"
    assert command_name(["--version"]) is None


def test_bad_settings_exit_2_before_any_server_module(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEXGATE_HOME", str(tmp_path))
    assert start_server(GlobalOptions(), ["--port", "abc"]) == 2
    assert capsys.readouterr().err.startswith("codexgate: port: invalid value 'abc' from --port")
    assert start_server(GlobalOptions(), ["--no-such-flag", "1"]) == 2
    assert "--no-such-flag: unknown option" in capsys.readouterr().err


def test_state_url_without_secret_key_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODEXGATE_HOME", str(tmp_path))
    assert start_server(GlobalOptions(), ["--state-url", "redis://127.0.0.1:9"]) == 2
    assert "secret_key" in capsys.readouterr().err
