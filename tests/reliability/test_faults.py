"""Upstream and client faults: each a clean error within the configured timeout, the server healthy after."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from codexgate.testing import Scenario, UpstreamSimulator
from tests.conftest import start_gateway
from tests.helpers import ServedApp

MESSAGES = [{"role": "user", "content": "fault test"}]


@pytest.fixture
def served(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[ServedApp]:
    _settings, context = start_gateway(simulator, tmp_path / "home", read_timeout=1.0, retry_budget=1.0)
    with context as app:
        yield app


def _stream(base_url: str) -> tuple[int, list[str]]:
    response = httpx.post(
        base_url + "/v1/chat/completions", json={"model": "gpt-5", "messages": MESSAGES, "stream": True}, timeout=15
    )
    return response.status_code, [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]


def _healthy(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url + "/v1", api_key="x", max_retries=0)
    assert client.chat.completions.create(model="gpt-5", messages=MESSAGES).choices[0].message.content


@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        ("drop_mid_stream", "upstream_disconnected"),
        ("stall_after", "upstream_timeout"),
        ("non_json_data", "upstream_protocol_error"),
    ],
)
def test_stream_faults_end_with_one_error_chunk(
    served: ServedApp, simulator: UpstreamSimulator, scenario: str, code: str
) -> None:
    simulator.enqueue(Scenario(scenario))
    started = time.monotonic()
    status, data = _stream(served.base_url)
    assert status == 200
    errors = [json.loads(d)["error"] for d in data if d.startswith('{"error"')]
    assert len(errors) == 1, data[-3:]
    assert set(errors[0]) == {"message", "type", "param", "code"}
    if scenario != "non_json_data":
        assert errors[0]["code"] == code
    assert "[DONE]" not in data
    assert time.monotonic() - started < 10
    _healthy(served.base_url)


@pytest.mark.parametrize(
    ("scenario", "status"),
    [("http_500", 502), ("http_502", 502), ("http_503", 502), ("never_answer", 504), ("close_before_events", 200)],
)
def test_faults_before_the_first_event(
    served: ServedApp, simulator: UpstreamSimulator, scenario: str, status: int
) -> None:
    for _ in range(3):  # 5xx are retried twice
        simulator.enqueue(Scenario(scenario))
    started = time.monotonic()
    got, data = _stream(served.base_url)
    assert time.monotonic() - started < 10
    assert got == status
    if status == 200:  # headers came, then the connection closed: the stream reports it
        assert any(d.startswith('{"error"') for d in data)
    simulator.clear()
    _healthy(served.base_url)


def test_a_stalled_answer_without_stream_is_a_504(served: ServedApp, simulator: UpstreamSimulator) -> None:
    simulator.enqueue(Scenario("stall_after", fault_after=3))
    started = time.monotonic()
    with pytest.raises(openai.APIStatusError) as info:
        openai.OpenAI(base_url=served.base_url + "/v1", api_key="x", max_retries=0).chat.completions.create(
            model="gpt-5", messages=MESSAGES
        )
    elapsed = time.monotonic() - started
    assert info.value.status_code == 504 and info.value.code == "upstream_timeout"
    assert 1.0 <= elapsed < 5, elapsed  # read_timeout is 1 s
    _healthy(served.base_url)


def test_slow_but_steady_stream_is_not_timed_out(served: ServedApp, simulator: UpstreamSimulator) -> None:
    # read_timeout is 1 s; the answer takes ~3 s in total with 0.3 s between events.
    simulator.enqueue(Scenario("text", text=" ".join(["slow"] * 8), event_delay=0.3))
    status, data = _stream(served.base_url)
    assert status == 200 and data[-1] == "[DONE]"
    assert not any(d.startswith('{"error"') for d in data)


def test_half_sent_body_leaves_the_server_healthy(served: ServedApp) -> None:
    host, port = served.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b'Content-Length: 1000\r\n\r\n{"model": "gpt-5", "mess'
        )
    _healthy(served.base_url)


def test_concurrency_cap_answers_429_with_retry_after(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    _settings, context = start_gateway(simulator, tmp_path / "home", max_concurrent_streams=2)
    with context as app:
        for _ in range(2):
            simulator.enqueue(Scenario("text", text="held open", event_delay=0.5))
        holders = [
            httpx.stream(
                "POST",
                app.base_url + "/v1/chat/completions",
                json={"model": "gpt-5", "messages": MESSAGES, "stream": True},
                timeout=15,
            )
            for _ in range(2)
        ]
        opened = [holder.__enter__() for holder in holders]
        try:
            assert all(response.status_code == 200 for response in opened)
            rejected = httpx.post(
                app.base_url + "/v1/chat/completions", json={"model": "gpt-5", "messages": MESSAGES}, timeout=15
            )
            assert rejected.status_code == 429
            assert rejected.headers["retry-after"] == "1"
            assert rejected.json()["error"]["code"] == "too_many_concurrent_streams"
        finally:
            for holder in holders:
                holder.__exit__(None, None, None)
        time.sleep(0.3)
        _healthy(app.base_url)


def test_oversized_request_head_is_431(served: ServedApp) -> None:
    response = httpx.get(served.base_url + "/health", headers={"x-big": "a" * 100_000})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"
    assert response.headers["x-request-id"]
    assert httpx.get(served.base_url + "/health", headers={"x-ok": "a" * 1000}).status_code == 200


def test_slow_reader_gets_backpressure_not_an_unbounded_buffer(served: ServedApp, simulator: UpstreamSimulator) -> None:
    tokens = 150_000
    simulator.enqueue(Scenario("text", tokens=tokens))
    host, port = served.base_url.removeprefix("http://").split(":")
    body = json.dumps({"model": "gpt-5", "messages": MESSAGES, "stream": True}).encode()
    with socket.create_connection((host, int(port))) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        time.sleep(2.0)  # the client reads nothing
        request = simulator.responses_requests[-1]
        held_back = request.events_sent
        # the upstream was paused by the full pipe instead of being read into gateway memory
        assert held_back < tokens * 0.6, held_back
        tail = b""
        sock.settimeout(20)
        while b"data: [DONE]" not in tail:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            tail = (tail + chunk)[-64:]
    assert b"data: [DONE]" in tail  # the 2 s without reading were the client's, not an upstream timeout
    assert request.wait_closed(10)
    assert request.events_sent > held_back  # reading resumed the upstream
    print(f"upstream held at {held_back} of {tokens + 9} events while the client did not read")
