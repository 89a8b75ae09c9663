"""WebSocket ``/v1/responses`` with a real Python WebSocket client against a served gateway and the simulator:
turns and their events, ``previous_response_id`` chaining, warm-ups, the in-flight rule, the frame bound,
the lifetime, the key check and the cross-origin rule, metrics and usage rows."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Origin

from codexgate.storage.api_keys import KeyStore
from codexgate.testing import Scenario, ToolCall, UpstreamSimulator
from tests.conftest import Gateway, start_gateway

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def _ws_url(base_url: str) -> str:
    return base_url.replace("http://", "ws://") + "/v1/responses"


def _user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def _create(**body: Any) -> str:
    return json.dumps({"type": "response.create", "model": "gpt-5", "stream": True, "store": False, **body})


def _turn(socket: ClientConnection, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The frames of one turn, up to its terminal event or an error frame."""
    frames: list[dict[str, Any]] = []
    while True:
        frame = json.loads(socket.recv(timeout=timeout))
        frames.append(frame)
        if frame["type"] in ("response.completed", "response.failed", "response.incomplete", "error"):
            return frames


def _named(line: str, name: str) -> bool:
    """``name`` exactly (``name{…}`` or ``name value``), or a prefix of labels ending in ``,``."""
    return line.startswith(name) and (name.endswith((",", "}")) or line[len(name)] in " {")


def _metric(base_url: str, name: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=5).text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if _named(line, name)]
    return sum(values)


@pytest.fixture
def served(gateway: Gateway) -> Iterator[Gateway]:
    yield gateway


def test_a_tool_loop_of_two_turns_is_chained_by_previous_response_id(served: Gateway) -> None:
    simulator = served.simulator
    simulator.enqueue(Scenario("tool_calls", calls=[ToolCall("get_weather", {"city": "Paris"})]))
    simulator.enqueue(Scenario("text", text="It is sunny."))
    with connect(_ws_url(served.base_url)) as socket:
        socket.send(_create(input=[_user("weather in Paris?")], tools=[WEATHER_TOOL]))
        first = _turn(socket)
        # every upstream event, the backend's own codex.rate_limits included, in order
        assert [f["type"] for f in first[:2]] == ["codex.rate_limits", "response.created"]
        assert first[-1]["type"] == "response.completed"
        assert [f["type"] for f in first] == served.simulator.responses_requests[0].event_types
        assert all(frame["response"]["model"] == "gpt-5" for frame in first if "response" in frame)
        call = next(f["item"] for f in first if f["type"] == "response.output_item.done")
        assert call["type"] == "function_call" and call["name"] == "get_weather"
        output = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
        socket.send(_create(previous_response_id=first[-1]["response"]["id"], input=[output], tools=[WEATHER_TOOL]))
        second = _turn(socket)
        assert second[-1]["type"] == "response.completed"
        text = "".join(f["delta"] for f in second if f["type"] == "response.output_text.delta")
        assert text == "It is sunny."
        # the upstream got the whole conversation over HTTP: first input, the call, its output
        posts = simulator.responses_requests
        assert len(posts) == 2 and all(r.method == "POST" for r in posts)
        expanded = posts[1].json["input"]
        assert [item.get("type") for item in expanded][-2:] == ["function_call", "function_call_output"]
        assert any(item.get("role") == "user" for item in expanded)
        assert "previous_response_id" not in posts[1].json
        assert _metric(served.base_url, "codexgate_websockets_open") == 1
    # the socket is gone, its two turns counted
    deadline = time.monotonic() + 5
    while _metric(served.base_url, "codexgate_websockets_open") != 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(served.base_url, "codexgate_websockets_open") == 0
    assert _metric(served.base_url, 'codexgate_websocket_turns_total{outcome="completed"}') == 2
    # one request (usage row, metrics, access log) per turn
    assert _metric(served.base_url, 'codexgate_requests_total{endpoint="responses.websocket",') == 2


def test_a_warm_up_is_answered_without_the_backend_and_chains(served: Gateway) -> None:
    with connect(_ws_url(served.base_url)) as socket:
        socket.send(_create(input=[_user("warm up")], generate=False))
        warm = _turn(socket)
        assert [f["type"] for f in warm] == ["response.created", "response.completed"]
        assert warm[-1]["response"]["output"] == []
        assert not served.simulator.responses_requests
        socket.send(_create(previous_response_id=warm[-1]["response"]["id"], input=[_user("now answer")]))
        assert _turn(socket)[-1]["type"] == "response.completed"
    sent = served.simulator.responses_requests[0].json["input"]
    texts = [part["text"] for item in sent if item.get("role") == "user" for part in item["content"]]
    assert texts == ["warm up", "now answer"]


def test_an_unknown_previous_response_id_is_an_error_frame(served: Gateway) -> None:
    with connect(_ws_url(served.base_url)) as socket:
        socket.send(_create(previous_response_id="resp_nope", input=[_user("x")]))
        (frame,) = _turn(socket)
        assert frame["type"] == "error" and frame["status"] == 400
        assert frame["error"]["code"] == "previous_response_not_found"
        # the socket stays usable
        socket.send(_create(input=[_user("again")]))
        assert _turn(socket)[-1]["type"] == "response.completed"


def test_a_second_create_while_one_is_in_flight_is_refused(served: Gateway) -> None:
    served.simulator.enqueue(Scenario("text", text="one two three four five six", event_delay=0.1))
    with connect(_ws_url(served.base_url)) as socket:
        socket.send(_create(input=[_user("slow")]))
        socket.send(_create(input=[_user("too soon")]))
        frames = _turn(socket)
        refusals = [f for f in frames if f["type"] == "error"]
        assert refusals and refusals[0]["error"]["code"] == "response_already_in_flight"
        rest = _turn(socket)  # the first turn goes on to its end
        assert rest[-1]["type"] == "response.completed"
    assert len(served.simulator.responses_requests) == 1


def test_an_unknown_model_and_a_bad_frame_are_error_frames(served: Gateway) -> None:
    with connect(_ws_url(served.base_url)) as socket:
        socket.send(_create(model="no-such-model", input=[_user("x")]))
        (frame,) = _turn(socket)
        assert frame["status"] == 404 and frame["error"]["code"] == "model_not_found"
        assert "gpt-5" in frame["error"]["message"]
        socket.send(json.dumps({"type": "response.cancel"}))
        (frame,) = _turn(socket)
        assert frame["type"] == "error" and frame["status"] == 400


def test_a_frame_above_max_body_size_closes_with_1009(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    _settings, served_context = start_gateway(simulator, tmp_path / "home", max_body_size=4096)
    with served_context as served, connect(_ws_url(served.base_url), max_size=None) as socket:
        socket.send(_create(input=[_user("x" * 8192)]))
        with pytest.raises(ConnectionClosed) as info:
            socket.recv(timeout=5)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1009
    assert not simulator.responses_requests


def test_the_lifetime_ends_with_connection_limit_reached(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    _settings, served_context = start_gateway(simulator, tmp_path / "home", websocket_max_lifetime=0.5)
    with served_context as served, connect(_ws_url(served.base_url)) as socket:
        frame = json.loads(socket.recv(timeout=10))
        assert frame["type"] == "error" and frame["error"]["code"] == "websocket_connection_limit_reached"
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=5)


def test_the_key_check_and_the_cross_origin_rule_apply(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    _settings, served_context = start_gateway(simulator, home, cors_origins=["http://ui.example"])
    key = KeyStore(home / "keys.json").create("ws")
    with served_context as served:
        url = _ws_url(served.base_url)
        with pytest.raises(InvalidStatus):
            connect(url, open_timeout=5)
        with pytest.raises(InvalidStatus):
            connect(url, additional_headers={"authorization": "Bearer wrong"}, open_timeout=5)
        good = {"authorization": f"Bearer {key}"}
        with pytest.raises(InvalidStatus):
            connect(url, additional_headers=good, origin=Origin("http://evil.example"), open_timeout=5)
        with connect(url, additional_headers=good, origin=Origin("http://ui.example")) as socket:
            socket.send(_create(input=[_user("hi")]))
            assert _turn(socket)[-1]["type"] == "response.completed"


def test_a_shutdown_closes_open_sockets_after_the_grace_period(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    from codexgate.server.app import create_app
    from tests.helpers import settings_for, write_auth_json

    write_auth_json(tmp_path)
    # Starlette's test client calls itself "testserver": a Host the no-key front refuses unless allowed
    app = create_app(settings_for(tmp_path, simulator.base_url, allowed_hosts=["testserver"]))
    gateway = app.app.state.gateway
    with TestClient(app) as client, client.websocket_connect("/v1/responses") as socket:
        socket.send_text(_create(input=[_user("before")]))
        frames: list[dict[str, Any]] = []
        while not frames or frames[-1]["type"] != "response.completed":
            frames.append(socket.receive_json())
        assert client.portal is not None
        client.portal.call(gateway.begin_shutdown, 0.05)
        with pytest.raises(WebSocketDisconnect) as info:
            socket.receive_json()
        assert info.value.code == 1012
    assert len(gateway.open_streams) == 0  # the socket left the gateway's open streams
