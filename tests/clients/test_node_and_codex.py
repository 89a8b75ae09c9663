"""Real Node clients against the gateway: the openai Node SDK and the Codex CLI (`codex exec`)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from codexgate.testing import Scenario
from tests.clients.conftest import NodeTools
from tests.conftest import Gateway

NODE_DIR = Path(__file__).parent / "node"


def _run_node(tools: NodeTools, script: str, gateway: Gateway) -> dict[str, object]:
    result = subprocess.run(
        [tools.node, str(NODE_DIR / script)],
        cwd=tools.root,
        env={**os.environ, "GATEWAY_URL": gateway.base_url + "/v1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout.strip().splitlines()[-1])
    assert isinstance(document, dict)
    return document


def test_node_streaming_chat_with_tool_call(node_tools: NodeTools, gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("tool_calls", calls=[("get_weather", {"city": "Paris"})]))
    result = _run_node(node_tools, "chat_tool_stream.mjs", gateway)
    calls = result["calls"]
    assert isinstance(calls, dict) and list(calls) == ["0"]
    assert calls["0"]["name"] == "get_weather" and json.loads(calls["0"]["arguments"]) == {"city": "Paris"}
    assert calls["0"]["id"]
    assert result["finishReasons"] == ["tool_calls"]
    assert isinstance(result["usage"], dict) and result["usage"]["total_tokens"] > 0


def test_node_responses_stream(node_tools: NodeTools, gateway: Gateway) -> None:
    gateway.simulator.enqueue(Scenario("text", text="from the node sdk"))
    result = _run_node(node_tools, "responses_stream.mjs", gateway)
    types = result["types"]
    assert isinstance(types, list) and types[0] == "response.created" and types[-1] == "response.completed"
    assert result["text"] == "from the node sdk"
    assert result["model"] == "gpt-5-low"


def test_codex_cli_exec_through_the_gateway(node_tools: NodeTools, gateway: Gateway, tmp_path: Path) -> None:
    codex_home = tmp_path / "codex-home"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        'model = "gpt-5-codex"\nmodel_provider = "codexgate"\ncheck_for_update_on_startup = false\n\n'
        "[model_providers.codexgate]\n"
        'name = "codexgate"\n'
        f'base_url = "{gateway.base_url}/v1"\n'
        'env_key = "CODEXGATE_API_KEY"\n'
        'wire_api = "responses"\nrequest_max_retries = 0\nstream_max_retries = 0\n'
    )
    answer = "The simulator answered the Codex CLI."
    gateway.simulator.enqueue(Scenario("text", text=answer))
    env = {
        **os.environ,
        "CODEX_HOME": str(codex_home),
        "HOME": str(codex_home),
        "CODEXGATE_API_KEY": "dummy",
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [str(node_tools.codex), "exec", "--skip-git-repo-check", "Say hello"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert answer in result.stdout
    sent = gateway.simulator.responses_requests[-1]
    body = sent.json
    assert body["model"] == "gpt-5-codex" and body["store"] is False
    assert isinstance(body["instructions"], str) and body["instructions"]
    assert sent.headers["authorization"] != "Bearer dummy"  # the client's key is never forwarded
