"""The simulator's 2026 backend behaviour: Lite models and their rules, the client-version gate,
``/responses/compact`` and the WebSocket on ``/responses``."""

from __future__ import annotations

import json
from typing import Any

import httpx
from websockets.sync.client import connect

from codexgate.testing import UpstreamSimulator
from codexgate.testing.models_catalog import GATED_MODEL, LITE_MODEL, LITE_ONLY_MODEL
from tests.testing.support import AUTH, events_of, request_body

CLI = {**AUTH, "user-agent": "codex_exec/0.169.0 (Linux; x86_64)"}
LITE = {**CLI, "x-openai-internal-codex-responses-lite": "true"}


def lite_body(model: str = LITE_MODEL, **overrides: Any) -> dict[str, Any]:
    tools = [{"type": "namespace", "name": "functions", "description": "d", "tools": []}]
    body: dict[str, Any] = {
        "model": model,
        "input": [
            {"type": "additional_tools", "id": "at_1", "role": "developer", "tools": tools},
            {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]},
        ],
        "parallel_tool_calls": False,
        "reasoning": {"effort": "max", "context": "all_turns"},
        "store": False,
        "stream": True,
    }
    body.update(overrides)
    return body


def test_lite_models_refuse_the_full_shape(http: httpx.Client) -> None:
    full = http.post("/responses", json=request_body(model=LITE_MODEL), headers=AUTH)
    assert full.status_code == 400 and "Lite" in full.json()["detail"]
    assert http.post("/responses", json=request_body(model=LITE_ONLY_MODEL), headers=AUTH).status_code == 404


def test_the_lite_shape_is_served_and_its_rules_apply(http: httpx.Client) -> None:
    answer = http.post("/responses", json=lite_body(), headers=LITE)
    assert answer.status_code == 200 and events_of(answer.content)[-1]["type"] == "response.completed"
    parallel = http.post("/responses", json=lite_body(parallel_tool_calls=True), headers=LITE)
    assert parallel.status_code == 400 and "parallel_tool_calls" in parallel.json()["detail"]
    tools = http.post("/responses", json=lite_body(tools=[{"type": "function", "name": "f"}]), headers=LITE)
    assert tools.status_code == 400


def test_the_client_version_gate(http: httpx.Client, sim: UpstreamSimulator) -> None:
    gated = http.post("/responses", json=request_body(model=GATED_MODEL), headers=CLI)
    assert gated.status_code == 400 and "requires a newer version of Codex" in gated.json()["detail"]
    sim.models[-2]["minimal_client_version"] = "0.100.0"
    assert sim.models[-2]["slug"] == GATED_MODEL
    assert http.post("/responses", json=request_body(model=GATED_MODEL), headers=CLI).status_code == 200


def test_compact(http: httpx.Client) -> None:
    body = {"model": "gpt-5", "input": [{"type": "message", "role": "user", "content": []}]}
    answer = http.post("/responses/compact", json=body, headers=AUTH)
    assert answer.status_code == 200 and answer.json()["output"][0]["type"] == "compaction"
    assert http.post("/responses/compact", json={**body, "stream": True}, headers=AUTH).status_code == 400
    assert http.post("/responses/compact", json=body).status_code == 401


def test_the_websocket_answers_like_sse(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sse = [event["type"] for event in events_of(http.post("/responses", json=request_body(), headers=AUTH).content)]
    url = sim.base_url.replace("http://", "ws://") + "/responses"
    with connect(url, additional_headers=AUTH) as socket:
        for _turn in range(2):
            socket.send(json.dumps({"type": "response.create", **request_body()}))
            frames: list[dict[str, Any]] = []
            while not frames or frames[-1]["type"] != "response.completed":
                frames.append(json.loads(socket.recv(timeout=10)))
            assert [frame["type"] for frame in frames] == [t for t in sse if t != "codex.rate_limits"]
        socket.send(json.dumps({"type": "response.create", **request_body(store=True)}))
        error = json.loads(socket.recv(timeout=10))
        assert error["type"] == "error" and error["status"] == 400
    turns = [r for r in sim.requests if r.method == "WS"]
    assert len(turns) == 3 and turns[0].json["model"] == "gpt-5"
