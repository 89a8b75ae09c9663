"""The layer in front of FastAPI over real sockets: a browser's stream (through FastAPI, with CORS) and a
script's (direct) both arrive whole. Envelopes, keys and CORS headers on both ways are checked
in-process in test_endpoint_matrix.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from codexgate.testing import Scenario, UpstreamSimulator
from codexgate.testing.scenarios import expected_text
from tests.conftest import start_gateway
from tests.helpers import ServedApp

ORIGIN = "http://ui.example"
BODY = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], "stream": True}


@pytest.fixture
def with_cors(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[ServedApp]:
    _settings, context = start_gateway(simulator, tmp_path / "home", cors_origins=[ORIGIN])
    with context as served:
        yield served


def _stream_text(response: httpx.Response) -> str:
    text = ""
    for line in response.text.splitlines():
        if line.startswith("data: {"):
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                text += choice["delta"].get("content") or ""
    return text


def test_a_browser_request_gets_cors_headers_on_the_stream(with_cors: ServedApp, simulator: UpstreamSimulator) -> None:
    url = with_cors.base_url + "/v1/chat/completions"
    preflight = httpx.options(url, headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}, timeout=10)
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ORIGIN
    simulator.enqueue(Scenario("text", text="from a browser"))
    response = httpx.post(url, json=BODY, headers={"Origin": ORIGIN}, timeout=10)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN
    assert response.headers["x-request-id"].startswith("req_")
    assert _stream_text(response) == "from a browser"
    # without an Origin the same gateway answers through the direct path, just as well
    simulator.enqueue(Scenario("text", text="from a script"))
    plain = httpx.post(url, json=BODY, timeout=10)
    assert "access-control-allow-origin" not in plain.headers
    assert _stream_text(plain) == "from a script" and plain.headers["x-request-id"].startswith("req_")


def test_both_spellings_of_the_paths_and_other_methods(gateway_served: ServedApp, simulator: UpstreamSimulator) -> None:
    base = gateway_served.base_url
    simulator.enqueue(Scenario("text", text="no v1"))
    assert _stream_text(httpx.post(base + "/chat/completions", json=BODY, timeout=10)) == "no v1"
    wrong_method = httpx.get(base + "/v1/chat/completions", timeout=10)
    assert wrong_method.status_code == 405 and wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.headers["x-request-id"].startswith("req_")
    simulator.enqueue(Scenario("text", text="a response"))
    response = httpx.post(base + "/responses", json={"model": "gpt-5", "input": "hi"}, timeout=10)
    assert response.status_code == 200 and response.headers["x-request-id"].startswith("req_")
    document = response.json()
    assert document["object"] == "response" and document["status"] == "completed"
    assert document["output"][-1]["content"][0]["text"] == "a response"


def test_the_simulators_default_answer_comes_back_whole(gateway_served: ServedApp) -> None:
    response = httpx.post(gateway_served.base_url + "/v1/chat/completions", json=BODY, timeout=10)
    assert _stream_text(response) == expected_text("hi")


@pytest.fixture
def gateway_served(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[ServedApp]:
    _settings, context = start_gateway(simulator, tmp_path / "home")
    with context as served:
        yield served
