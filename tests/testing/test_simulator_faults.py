"""Faults the gateway must survive, timing knobs, and what the simulator records about them."""

from __future__ import annotations

import asyncio
import itertools
import time

import httpx
import pytest

from codexgate.testing import Scenario, UpstreamSimulator
from tests.testing.support import AUTH, check_stream, events_of, parse_sse, request_body


def test_drop_mid_stream_breaks_the_body(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("drop_mid_stream", fault_after=4))
    received = b""
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/responses", json=request_body(), headers=AUTH) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_raw():
            received += chunk
    events = events_of(received)
    assert events[0]["type"] == "codex.rate_limits"
    assert [e.get("sequence_number") for e in events[1:]] == [0, 1, 2, 3]
    assert sim.requests[-1].outcome == "dropped" and sim.requests[-1].events_sent == 5
    assert sim.requests[-1].disconnected_at is None


def test_close_before_events(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue("close_before_events")
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("POST", "/responses", json=request_body(), headers=AUTH) as r,
    ):
        assert r.status_code == 200
        r.read()
    assert sim.requests[-1].outcome == "closed" and sim.requests[-1].events_sent == 0


def test_never_answer_times_the_client_out(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue("never_answer")
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        http.post("/responses", json=request_body(), headers=AUTH, timeout=0.3)
    gave_up = time.monotonic()
    record = sim.requests[-1]
    assert record.wait_closed(10) and record.outcome == "disconnected" and record.status is None
    assert record.disconnected_at is not None and record.disconnected_at - gave_up < 2.0
    assert gave_up - started >= 0.3


def test_stall_after_some_events(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("stall_after", fault_after=3))
    received = b""
    with pytest.raises(httpx.ReadTimeout):  # noqa: SIM117
        with http.stream("POST", "/responses", json=request_body(), headers=AUTH, timeout=0.4) as r:
            for chunk in r.iter_raw():
                received += chunk
    assert [e["type"] for e in events_of(received)] == [
        "codex.rate_limits",
        "response.created",
        "response.in_progress",
        "response.output_item.added",
    ]
    assert sim.requests[-1].wait_closed(10) and sim.requests[-1].outcome == "disconnected"


def test_non_json_data_line_mid_stream(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("non_json_data", fault_after=2))
    response = http.post("/responses", json=request_body(), headers=AUTH)
    messages = parse_sse(response.content)
    assert messages[3].event == "message" and messages[3].data == "not json"
    assert b"\ndata: not json\n\n" in response.content
    good = [m for m in messages if m.data != "not json"]
    assert len(good) == len(messages) - 1 and good[-1].event == "response.completed"


def test_slow_keeps_sending(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("slow", event_delay=0.03, text="a b c d"))
    check_stream(events_of(http.post("/responses", json=request_body(), headers=AUTH).content))
    times = sim.requests[-1].event_times
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) > 10 and min(gaps) >= 0.025


def test_event_delay_is_observable_per_event(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.event_delay = 0.02
    prompt = " ".join(f"word{n}" for n in range(30))  # about 40 events: the stream lasts about 0.8 s
    arrivals: list[float] = []
    with http.stream("POST", "/responses", json=request_body(prompt), headers=AUTH) as r:
        for line in r.iter_lines():
            if line.startswith("data: "):
                arrivals.append(time.monotonic())
    record = sim.requests[-1]
    assert len(arrivals) == record.events_sent > 30
    assert record.first_event_at == record.event_times[0]
    gaps = [b - a for a, b in itertools.pairwise(record.event_times)]
    assert min(gaps) >= 0.02 * 0.9  # the simulator paced every event
    # written one by one, not buffered: the first event reached the client before the last was written
    assert arrivals[0] < record.event_times[-1]
    assert arrivals[-1] - arrivals[0] >= 0.02 * (len(arrivals) - 1) * 0.9
    assert len(record.event_types) == len(record.event_times)
    first_delta = record.sent_at("response.output_text.delta")
    assert first_delta == record.event_times[record.event_types.index("response.output_text.delta")]
    assert record.sent_at("response.completed") == record.event_times[-1]
    assert record.sent_at("no.such.event") is None


def test_header_delay(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("text", header_delay=0.2))
    started = time.monotonic()
    http.post("/responses", json=request_body(), headers=AUTH)
    record = sim.requests[-1]
    assert record.headers_sent_at is not None and record.headers_sent_at - started >= 0.2


def test_client_disconnect_is_seen_before_the_stream_ends(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("text", tokens=100, event_delay=0.05))  # the whole stream takes 5 s
    with http.stream("POST", "/responses", json=request_body(), headers=AUTH) as r:
        for line in r.iter_lines():
            if "output_text.delta" in line:
                break
    closed_at = time.monotonic()
    record = sim.requests[-1]
    assert record.wait_closed(10)
    assert record.outcome == "disconnected" and record.disconnected_at is not None
    assert record.disconnected_at - closed_at < 2.0
    assert record.events_sent < 50


async def test_disconnect_during_a_stall_is_seen(sim: UpstreamSimulator) -> None:
    sim.enqueue(Scenario("stall_after", fault_after=2))
    async with httpx.AsyncClient(base_url=sim.base_url) as client:
        async with client.stream("POST", "/responses", json=request_body(), headers=AUTH) as r:
            async for _ in r.aiter_raw():
                break
        closed_at = time.monotonic()
    record = sim.requests[-1]
    assert await record.until_closed(10)
    assert record.disconnected_at is not None and record.disconnected_at - closed_at < 2.0


async def test_stop_ends_open_answers() -> None:
    simulator = UpstreamSimulator()
    await simulator.start()
    base_url = simulator.base_url
    simulator.enqueue("never_answer")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        pending = asyncio.create_task(client.post("/responses", json=request_body(), headers=AUTH))
        deadline = time.monotonic() + 10
        while not simulator.requests and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert simulator.requests, "the request never reached the simulator"
        record = simulator.requests[-1]
        assert not record.closed  # never_answer holds it open ...
        await asyncio.wait_for(simulator.stop(), 10)  # ... until the simulator stops
        assert record.closed and record.outcome == "stopped" and record.status is None
        with pytest.raises(httpx.TransportError):  # the client sees its connection end, not a 30 s timeout
            await asyncio.wait_for(pending, 10)
    async with httpx.AsyncClient(base_url=base_url) as client:
        with pytest.raises(httpx.ConnectError):  # and the port is free again
            await client.get("/models")
