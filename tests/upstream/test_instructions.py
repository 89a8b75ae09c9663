"""Instructions: resolution order, and capture from a Codex-CLI-like binary via a local endpoint."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from typer.testing import CliRunner

from codexgate.cli.main import app
from codexgate.config import load_settings
from codexgate.upstream.capture import extract_system_prompt
from codexgate.upstream.instructions import NEUTRAL_INSTRUCTIONS, resolve_instructions

# A stand-in for the `codex` binary: it reads the custom provider from $CODEX_HOME/config.toml and
# sends one Responses request the way Codex CLI 0.169 does (its prompt as leading developer messages).
FAKE_CODEX = f"""#!{sys.executable}
import json, os, sys, tomllib, urllib.request
assert sys.argv[1:3] == ["exec", "--skip-git-repo-check"], sys.argv
config = tomllib.load(open(os.path.join(os.environ["CODEX_HOME"], "config.toml"), "rb"))
provider = config["model_providers"][config["model_provider"]]
assert os.environ[provider["env_key"]]
body = {{"model": config["model"], "stream": True, "store": False, "input": [
    {{"type": "message", "role": "developer", "content": [{{"type": "input_text", "text": "PROMPT PART ONE"}}]}},
    {{"type": "message", "role": "developer", "content": [{{"type": "input_text", "text": "PROMPT PART TWO"}}]}},
    {{"type": "message", "role": "user", "content": [{{"type": "input_text", "text": sys.argv[3]}}]}}]}}
request = urllib.request.Request(provider["base_url"] + "/responses", data=json.dumps(body).encode(),
                                 headers={{"content-type": "application/json"}})
stream = urllib.request.urlopen(request, timeout=10).read().decode()
assert "response.completed" in stream
print("OK")
"""


def _settings(home: Path, **flags: object) -> object:
    return load_settings(flags={"home": str(home), **flags}, env={}).settings


def test_extract_prefers_instructions_then_leading_developer_messages() -> None:
    assert extract_system_prompt({"instructions": " X ", "input": []}) == "X"
    body = {
        "input": [
            {"role": "developer", "content": [{"type": "input_text", "text": "A"}]},
            {"role": "developer", "content": "B"},
            {"role": "user", "content": "hi"},
            {"role": "developer", "content": "late"},
        ]
    }
    assert extract_system_prompt(body) == "A\n\nB"
    assert extract_system_prompt({"input": [{"role": "user", "content": "x"}]}) is None


def test_resolution_order(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(flags={"home": str(home)}, env={}).settings
    assert resolve_instructions(settings, "gpt-5") == NEUTRAL_INSTRUCTIONS
    (home / "instructions").mkdir(parents=True)
    (home / "instructions" / "_default.md").write_text("captured default")
    assert resolve_instructions(settings, "gpt-5") == "captured default"
    (home / "instructions" / "gpt-5.md").write_text("captured for gpt-5")
    assert resolve_instructions(settings, "gpt-5") == "captured for gpt-5"
    assert resolve_instructions(settings, "other") == "captured default"
    configured = tmp_path / "mine.txt"
    configured.write_text("from the setting")
    with_file = load_settings(flags={"home": str(home), "instructions_file": str(configured)}, env={}).settings
    assert resolve_instructions(with_file, "gpt-5") == "from the setting"


def test_capture_command_stores_the_prompt_privately(tmp_path: Path) -> None:
    codex = tmp_path / "codex"
    codex.write_text(FAKE_CODEX)
    codex.chmod(0o755)
    home = tmp_path / "home"
    result = CliRunner().invoke(
        app,
        ["instructions", "capture", "--model", "gpt-5-codex", "--codex", str(codex), "--default"],
        env={"CODEXGATE_HOME": str(home), "PATH": os.environ["PATH"]},
    )
    assert result.exit_code == 0, result.output
    stored = home / "instructions" / "gpt-5-codex.md"
    assert stored.read_text() == "PROMPT PART ONE\n\nPROMPT PART TWO\n"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert "PROMPT PART" not in result.output  # the text itself is never printed
    settings = load_settings(flags={"home": str(home)}, env={}).settings
    assert resolve_instructions(settings, "gpt-5-codex") == "PROMPT PART ONE\n\nPROMPT PART TWO"
    assert resolve_instructions(settings, "gpt-5") == "PROMPT PART ONE\n\nPROMPT PART TWO"  # --default
    shown = CliRunner().invoke(
        app, ["instructions", "show", "--model", "gpt-5-codex"], env={"CODEXGATE_HOME": str(home)}
    )
    assert "captured" in shown.output


def test_capture_without_codex_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["instructions", "capture", "--codex", str(tmp_path / "missing")],
        env={"CODEXGATE_HOME": str(tmp_path)},
    )
    assert result.exit_code == 1 and "codex" in result.output
