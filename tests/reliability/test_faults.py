"""Upstream and client faults: each a clean error within the configured timeout, the server healthy after."""

from __future__ import annotations

import json
import re
import socket
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from codexgate.testing import RecordedRequest, Scenario, UpstreamSimulator
from tests.conftest import start_gateway
from tests.helpers import ServedApp, usage_rows, wait_until

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "fault test"}]


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


@pytest.mark.slow
def test_slow_but_steady_stream_is_not_timed_out(served: ServedApp, simulator: UpstreamSimulator) -> None:
    # read_timeout is 1 s; the answer's ~11 events take ~2.7 s in total with 0.25 s between them.
    simulator.enqueue(Scenario("text", text="slow slow slow", event_delay=0.25))
    status, data = _stream(served.base_url)
    assert status == 200 and data[-1] == "[DONE]"
    assert not any(d.startswith('{"error"') for d in data)


def test_half_sent_body_holds_nothing_and_leaves_one_row(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    # one stream slot: a slot the half-sent request kept would turn the next request into a 429
    settings, context = start_gateway(simulator, tmp_path / "home", read_timeout=1.0, max_concurrent_streams=1)
    with context as served:
        host, port = served.base_url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b'Content-Length: 1000\r\n\r\n{"model": "gpt-5", "mess'
            )
            sock.shutdown(socket.SHUT_WR)  # the client gives up mid-body
            answered = _read_to_end(sock)
        assert answered == b"", answered[:200]  # no answer can be made to half a body: the server just closes
        assert _active_streams(served.base_url) == 0
        assert simulator.requests == deque()  # nothing went upstream
        _healthy(served.base_url)
        assert len(simulator.responses_requests) == 1
        writer = served.server.config.app.state.gateway.usage_writer
        rows = usage_rows(writer, settings.database_path, 2)
        # every request leaves a trace: the half-sent one as a 400 (its body never came whole), then the healthy one
        assert sorted((row.status, row.error_code) for row in rows) == [(200, None), (400, "incomplete_body")]


def _read_to_end(sock: socket.socket) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _active_streams(base_url: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    match = re.search(r"^codexgate_active_streams (\S+)$", text, re.M)
    assert match is not None, "the metrics page lists codexgate_active_streams"
    return float(match.group(1))


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
        assert wait_until(lambda: _active_streams(app.base_url) == 0, timeout=10)  # the slots came back
        _healthy(app.base_url)


def test_oversized_request_head_is_431(served: ServedApp) -> None:
    response = httpx.get(served.base_url + "/health", headers={"x-big": "a" * 100_000})
    assert response.status_code == 431
    assert response.json()["error"]["code"] == "request_header_fields_too_large"
    assert response.headers["x-request-id"]
    assert httpx.get(served.base_url + "/health", headers={"x-ok": "a" * 1000}).status_code == 200


NOT_READING = 2.0  # seconds the slow client reads nothing: twice the gateway's 1 s upstream read timeout
QUIET = 1.0  # the upstream counts as held once it has sent nothing new for this long


def _held_count(request: RecordedRequest, deadline: float) -> int | None:
    """How many events the upstream had sent when it stopped sending (None if it never stopped)."""
    last, since = request.events_sent, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = request.events_sent
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= QUIET:
            return now
    return None


@pytest.mark.slow
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
        # the client reads nothing: the upstream sends until the pipes fill, then it is held
        started = time.monotonic()
        assert wait_until(lambda: simulator.responses_requests, timeout=20), "the request never reached upstream"
        request = simulator.responses_requests[-1]
        assert wait_until(lambda: request.events_sent > 0, timeout=20), "the upstream sent nothing"
        time.sleep(max(0.0, started + NOT_READING - time.monotonic()))  # the stimulus: a client that does not read
        held_back = _held_count(request, deadline=time.monotonic() + 60)
        assert held_back is not None, f"the upstream never stopped sending ({request.events_sent} events)"
        # events went out, then the full pipe paused the upstream instead of the gateway reading it into memory
        assert 0 < held_back < tokens * 0.6, held_back
        tail = b""
        sock.settimeout(30)
        while b"data: [DONE]" not in tail:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            tail = (tail + chunk)[-64:]
    assert b"data: [DONE]" in tail  # the time without reading was the client's, not an upstream timeout
    assert request.wait_closed(30)
    assert request.outcome == "completed"
    assert request.events_sent > held_back  # reading resumed the upstream
    print(f"upstream held at {held_back} of {request.events_sent} events while the client did not read")
