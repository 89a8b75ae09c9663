"""The real Codex CLI (npm ``@openai/codex`` 0.169.0) against the gateway: a turn on a Responses Lite model,
an effort of ``max``, and a tool loop of two turns over one WebSocket. Assertions are on shapes and
fields only (what the CLI sends holds its prompt text: nothing of it is kept)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from codexgate.protocol.lite_shape import LITE_HEADER
from codexgate.testing import Scenario, ToolCall
from codexgate.testing.models_catalog import LITE_MODEL
from tests.clients.conftest import NodeTools
from tests.conftest import Gateway

pytestmark = [pytest.mark.node, pytest.mark.slow]


def _codex(
    tools: NodeTools, gateway: Gateway, tmp_path: Path, model: str, prompt: str, *, extra: str = "", provider: str = ""
) -> subprocess.CompletedProcess[str]:
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir(exist_ok=True)
    (codex_home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "codexgate"\ncheck_for_update_on_startup = false\n{extra}\n'
        "[model_providers.codexgate]\n"
        'name = "codexgate"\n'
        f'base_url = "{gateway.base_url}/v1"\n'
        'env_key = "CODEXGATE_API_KEY"\n'
        'wire_api = "responses"\nrequest_max_retries = 0\nstream_max_retries = 0\n' + provider
    )
    env = {**os.environ, "CODEX_HOME": str(codex_home), "HOME": str(codex_home), "CODEXGATE_API_KEY": "dummy"}
    env["NO_COLOR"] = "1"
    return subprocess.run(
        [str(tools.codex), "exec", "--skip-git-repo-check", prompt],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _named(line: str, name: str) -> bool:
    """``name`` exactly (``name{…}`` or ``name value``), or a prefix of labels ending in ``,``."""
    return line.startswith(name) and (name.endswith((",", "}")) or line[len(name)] in " {")


def _metric(gateway: Gateway, name: str) -> float:
    text = httpx.get(gateway.base_url + "/metrics", timeout=5).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if _named(line, name))


def test_a_codex_turn_on_a_lite_model_at_effort_max(node_tools: NodeTools, gateway: Gateway, tmp_path: Path) -> None:
    answer = "Lite answered the Codex CLI."
    gateway.simulator.enqueue(Scenario("text", text=answer))
    result = _codex(node_tools, gateway, tmp_path, LITE_MODEL, "Say hello", extra='model_reasoning_effort = "max"')
    assert result.returncode == 0, result.stderr[-3000:]
    assert answer in result.stdout
    sent = gateway.simulator.responses_requests[-1]
    body = sent.json
    assert sent.headers.get(LITE_HEADER) == "true"  # the CLI's own header, carried over
    assert body["model"] == LITE_MODEL and "tools" not in body and "instructions" not in body
    assert body["input"][0]["type"] == "additional_tools" and body["input"][0]["id"]
    assert body["reasoning"].get("effort") == "max" and "summary" not in body["reasoning"]
    assert body["parallel_tool_calls"] is False
    assert sent.headers["originator"] == "codex_exec" and "openai-beta" not in sent.headers


def test_a_codex_tool_loop_over_one_websocket(node_tools: NodeTools, gateway: Gateway, tmp_path: Path) -> None:
    plan = {"plan": [{"step": "say hello", "status": "completed"}]}
    gateway.simulator.enqueue(Scenario("tool_calls", calls=[ToolCall("update_plan", plan)]))
    gateway.simulator.enqueue(Scenario("text", text="Done over the socket."))
    result = _codex(
        node_tools, gateway, tmp_path, "gpt-5-codex", "Plan, then say hello", provider="supports_websockets = true\n"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Done over the socket." in result.stdout
    assert _metric(gateway, "codexgate_websockets_opened_total") == 1
    assert _metric(gateway, 'codexgate_websocket_turns_total{outcome="completed"}') == 2
    # the CLI never fell back to HTTP: the gateway served no POST /v1/responses ...
    assert _metric(gateway, 'codexgate_requests_total{endpoint="responses",') == 0
    # ... and the backend saw only the two turns the socket carried (expanded over HTTP)
    posts = gateway.simulator.responses_requests
    assert len(posts) == 2
    assert [item.get("type") for item in posts[1].json["input"]][-2:] == ["function_call", "function_call_output"]
