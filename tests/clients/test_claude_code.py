"""The real Claude Code (npm ``@anthropic-ai/claude-code``, pinned in package-lock.json) against the
gateway and the simulator, offline: ``claude -p PROMPT --output-format json`` with a temporary HOME."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path
from typing import Any

import pytest

from codexgate.storage.api_keys import KeyStore
from codexgate.testing import Scenario
from tests.clients.conftest import NodeTools
from tests.conftest import Gateway

pytestmark = [pytest.mark.node, pytest.mark.slow]


def run_claude(tools: NodeTools, gateway: Gateway, home: Path, prompt: str, *extra: str) -> dict[str, Any]:
    claude = tools.root / "node_modules" / ".bin" / "claude"
    assert claude.exists(), "npm ci did not install Claude Code"
    key = KeyStore(gateway.settings.keys_file).create(f"claude-code-{secrets.token_hex(3)}")
    home.mkdir(exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": gateway.base_url,
        "ANTHROPIC_API_KEY": key,  # sent as x-api-key: the gateway's proxy key
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(claude), "-p", prompt, "--output-format", "json", *extra],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(document, dict)
    return document


def test_claude_code_plain_answer(node_tools: NodeTools, gateway: Gateway, tmp_path: Path) -> None:
    answer = "The simulator answered Claude Code."
    gateway.simulator.enqueue(Scenario("text", text=answer))
    document = run_claude(node_tools, gateway, tmp_path / "home", "Say hello")
    assert document.get("is_error") is False and document["result"] == answer
    sent = gateway.simulator.responses_requests
    assert len(sent) == 1
    body = sent[0].json
    assert body["stream"] is True and body["store"] is False and body["instructions"]
    assert "x-anthropic-billing-header" not in body["instructions"]
    session = sent[0].headers["session-id"]
    assert session and body["prompt_cache_key"] == session  # Claude Code's session id


def test_claude_code_runs_bash_and_the_output_comes_back(
    node_tools: NodeTools, gateway: Gateway, tmp_path: Path
) -> None:
    nonce = "nonce-" + secrets.token_hex(6)
    arguments = json.dumps({"command": f"echo {nonce}", "description": "Print the nonce"})
    prompt = f"Run the command for me. scenario:tool_calls tool=Bash args={arguments}"
    document = run_claude(node_tools, gateway, tmp_path / "home", prompt, "--allowedTools", "Bash")
    assert document.get("is_error") is False
    sent = gateway.simulator.responses_requests
    assert len(sent) >= 2
    first_call = [item for item in sent[0].json["input"] if item.get("type") == "function_call"]
    assert first_call == []  # the round starts fresh
    items = sent[1].json["input"]
    calls = [item for item in items if item.get("type") == "function_call"]
    outputs = [item for item in items if item.get("type") == "function_call_output"]
    assert calls and calls[-1]["name"] == "Bash" and json.loads(calls[-1]["arguments"])["command"] == f"echo {nonce}"
    assert outputs and outputs[-1]["call_id"] == calls[-1]["call_id"]
    assert nonce in outputs[-1]["output"]  # Claude Code really ran `echo`
    assert nonce in document["result"]
