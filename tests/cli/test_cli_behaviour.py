"""The CLI as a user meets it, through the real console script: a port in use, no traceback for any
expected failure, global options after the subcommand, where state is written, help texts, tables that
never cut a cell, ``status`` exit codes, the start-up line and ``server.json``."""

from __future__ import annotations

import json
import re
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexgate.config import describe_settings, flag_name
from codexgate.testing import SCENARIO_NAMES
from tests.cli.cli_support import BASE_URL, CODEXGATE, RunningCommand, cli_env, run_cli
from tests.helpers import write_auth_json

PORT_IN_USE = "is in use — another codexgate? use --port"


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield int(taken.getsockname()[1])


@pytest.mark.parametrize("command", ["serve", "simulate"])
def test_a_port_in_use_is_one_line_and_exit_1(tmp_path: Path, taken_port: int, command: str) -> None:
    result = run_cli([command, "--port", str(taken_port)], cli_env(tmp_path, CODEXGATE_HOME=str(tmp_path / "h")))
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == f"error: port {taken_port} {PORT_IN_USE}"


def test_no_traceback_for_expected_failures(tmp_path: Path) -> None:
    """Each command with bad input: a message, exit 1 or 2, never a traceback. Run side by side."""
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("port = [\n")
    broken_home = tmp_path / "broken"
    broken_home.mkdir()
    (broken_home / "keys.json").write_text("not json")
    (broken_home / "codex").mkdir()
    (broken_home / "codex" / "auth.json").write_text("{ not json")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    cases = [
        ["serve", "--port", "notanumber"],
        ["serve", "--no-such-setting", "1"],
        ["demo", "--port", "70000"],
        ["simulate", "--port", "-1"],
        ["config", "show", "--config", str(bad_toml)],
        ["keys", "list", "--home", str(broken_home)],
        ["keys", "create", "--name", "x", "--home", str(not_a_dir)],
        ["keys", "update", "nobody", "--tokens-per-day", "-5", "--home", str(tmp_path / "empty")],
        ["status", "--home", str(broken_home)],
        ["instructions", "show", "--home", str(not_a_dir)],
    ]
    env = cli_env(tmp_path, CODEX_HOME=str(broken_home / "codex"))
    processes = [
        (
            args,
            subprocess.Popen(
                [CODEXGATE, *args],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            ),
        )
        for args in cases
    ]
    for args, process in processes:
        _, err = process.communicate(timeout=90)
        assert process.returncode in (1, 2), (args, process.returncode, err)
        assert "Traceback" not in err, (args, err)
        assert err.strip(), (args, "no message")


def test_global_options_work_after_the_subcommand(tmp_path: Path) -> None:
    env = cli_env(tmp_path)
    home = tmp_path / "gate"
    created = run_cli(["keys", "create", "--name", "laptop", "--home", str(home)], env)
    assert created.returncode == 0, created.stderr
    # keys create says where it wrote: the file and the home
    assert str(home / "keys.json") in created.stderr and f"home {home}" in created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key and key not in created.stderr
    for args in (["--home", str(home), "keys", "list", "--json"], ["keys", "list", "--json", f"--home={home}"]):
        listed = run_cli(args, env)
        assert listed.returncode == 0, listed.stderr
        assert [entry["name"] for entry in json.loads(listed.stdout)] == ["laptop"]
    config = tmp_path / "c.toml"
    config.write_text('port = 9345\nhome = "' + str(home) + '"\n')
    shown = run_cli(["config", "show", "--json", "--config", str(config)], env)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)
    assert document["settings"]["port"]["value"] == 9345 and document["config_file"] == str(config)
    assert document["settings"]["port"]["meaning"] == "port to listen on"
    assert not list(Path(env["HOME"]).iterdir())


def test_serve_help_lists_every_setting_and_the_scenarios_are_in_simulate_help(tmp_path: Path) -> None:
    env = cli_env(tmp_path, COLUMNS="200")
    serve_help = run_cli(["serve", "--help"], env).stdout
    flat = re.sub(r"\s+", " ", serve_help)
    for info in describe_settings():
        assert flag_name(info.name) in flat, info.name
        assert re.sub(r"\s+", " ", info.meaning) in flat, info.name
        if info.type == "bool":
            assert f"{flag_name(info.name)} / --no-{flag_name(info.name)[2:]}" in flat
    assert "(default 9191)" in flat and "--port INT" in flat
    simulate_help = re.sub(r"\s+", " ", run_cli(["simulate", "--help"], env).stdout)
    for name in SCENARIO_NAMES:
        assert f" {name} — " in simulate_help, name


def test_tables_never_cut_names_or_numbers(tmp_path: Path) -> None:
    home = tmp_path / "gate"
    env = cli_env(tmp_path, COLUMNS="40")
    name = "a-rather-long-key-name-for-the-build-server-0123456789"
    assert run_cli(["keys", "create", "--name", name, "--home", str(home)], env).returncode == 0
    listed = run_cli(["keys", "list", "--home", str(home)], env)
    assert listed.returncode == 0, listed.stderr
    assert name in listed.stdout and "…" not in listed.stdout
    key_id = json.loads(run_cli(["keys", "list", "--json", "--home", str(home)], env).stdout)[0]["id"]
    assert key_id in listed.stdout
    shown = run_cli(["config", "show", "--home", str(home)], env)
    assert "https://chatgpt.com/backend-api/codex" in shown.stdout and "…" not in shown.stdout


def test_status_exit_codes(tmp_path: Path) -> None:
    home = tmp_path / "gate"
    env = cli_env(tmp_path, CODEX_HOME=str(tmp_path / "codex"))
    missing = run_cli(["status", "--home", str(home)], env)
    assert missing.returncode == 1 and "Not signed in" in missing.stdout
    # An expired access token with a refresh token: the next request renews it, so status is fine.
    write_auth_json(home, expires_in=-600)
    expired = run_cli(["status", "--json", "--home", str(home)], env)
    assert expired.returncode == 0, expired.stderr
    document = json.loads(expired.stdout)
    assert document["expired"] is True and document["refresh_will_renew"] is True and document["can_serve"] is True
    shown = run_cli(["status", "--home", str(home)], env)
    assert shown.returncode == 0 and "the next request refreshes it" in re.sub(r"\s+", " ", shown.stdout)
    # Expired and nothing to refresh it with: no credentials can serve.
    auth = json.loads((home / "auth.json").read_text())
    auth["tokens"]["refresh_token"] = None
    (home / "auth.json").write_text(json.dumps(auth))
    dead = run_cli(["status", "--home", str(home)], env)
    assert dead.returncode == 1 and "no refresh token" in dead.stderr and "Traceback" not in dead.stderr


def test_serve_on_port_0_shows_the_real_port_and_writes_server_json(tmp_path: Path) -> None:
    home = tmp_path / "gate"
    write_auth_json(home)
    env = cli_env(tmp_path, CODEXGATE_HOME=str(home), CODEX_HOME=str(tmp_path / "codex"), CODEXGATE_PORT="0")
    server = RunningCommand(["serve"], env)
    try:
        line = server.wait_for(re.compile(r"codexgate listening on .*"))
        port = int(BASE_URL.search(line.group(0)).group(1))  # type: ignore[union-attr]
        assert port != 0 and "no API key required" in line.group(0)
        server_file = home / "server.json"
        deadline = time.monotonic() + 30
        while not server_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert json.loads(server_file.read_text())["url"] == f"http://127.0.0.1:{port}"
        assert stat.S_IMODE(server_file.stat().st_mode) == 0o600
    finally:
        code = server.stop(signal.SIGTERM)
    assert code == 0, server.output
    assert not (home / "server.json").exists()


def test_the_start_up_line_says_keys_are_required_when_they_exist(tmp_path: Path) -> None:
    home = tmp_path / "gate"
    env = cli_env(tmp_path, CODEXGATE_HOME=str(home), CODEX_HOME=str(tmp_path / "codex"))
    assert run_cli(["keys", "create", "--name", "k"], env).returncode == 0
    server = RunningCommand(["serve", "--port", "0"], env)
    try:
        line = server.wait_for(re.compile(r"codexgate listening on .*")).group(0)
    finally:
        server.stop(signal.SIGTERM)
    assert "API keys required" in line and BASE_URL.search(line) and "no credentials yet" in line
