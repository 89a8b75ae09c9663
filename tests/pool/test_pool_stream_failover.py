"""A usage limit reported inside a 200 stream, before any output: with several accounts the request fails
over to the next account (the client sees nothing); with one account the client gets the error as before.

End to end through a real gateway and the simulator (``set_limit(..., in_stream=True)``), plus the
read-ahead itself over a scripted stream (every byte handed on, in order)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from codexgate.pool.accounts import AccountStatus
from codexgate.testing import UpstreamSimulator
from codexgate.testing.sse_events import encode_event
from codexgate.upstream.client import UpstreamStream
from codexgate.upstream.read_ahead import read_ahead
from tests.pool.test_pool_e2e import pool_gateway

RESETS_IN = 60.0

# -- end to end -------------------------------------------------------------------------------------


def chat_body(session: str, stream: bool) -> dict[str, Any]:
    return {
        "model": "gpt-5",
        "messages": [{"role": "user", "content": "hi"}],
        "stream": stream,
        "prompt_cache_key": session,
    }


def responses_body(session: str, stream: bool) -> dict[str, Any]:
    return {"model": "gpt-5", "input": "hi", "prompt_cache_key": session, "stream": stream}


def data_events(text: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for line in text.splitlines():
        if line.startswith("data:") and line[5:].strip() != "[DONE]":
            events.append(json.loads(line[5:]))
    return events


def answer_text(kind: str, response: httpx.Response) -> str:
    """The answer's text, asserting it is a whole answer with no error in it."""
    assert response.status_code == 200, response.text
    assert "usage_limit" not in response.text
    if kind == "chat":
        return str(response.json()["choices"][0]["message"]["content"])
    if kind == "chat_stream":
        assert response.text.rstrip().endswith("data: [DONE]")
        chunks = data_events(response.text)
        return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c.get("choices"))
    if kind == "responses_stream":
        events = data_events(response.text)
        assert events[-1]["type"] == "response.completed"
        return "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    output = response.json()["output"]
    return "".join(part["text"] for item in output if item["type"] == "message" for part in item["content"])


async def post(client: httpx.AsyncClient, kind: str, session: str) -> httpx.Response:
    if kind.startswith("chat"):
        return await client.post("/v1/chat/completions", json=chat_body(session, kind == "chat_stream"))
    return await client.post("/v1/responses", json=responses_body(session, kind == "responses_stream"))


@pytest.mark.parametrize("kind", ["chat_stream", "chat", "responses_stream", "responses"])
async def test_a_limit_reported_in_the_stream_fails_over_to_the_next_account(
    simulator: UpstreamSimulator, tmp_path: Path, kind: str
) -> None:
    simulator.set_limit("acct_a", remaining_requests=0, resets_in=RESETS_IN, in_stream=True)
    started = time.time()
    with pool_gateway(simulator, tmp_path / "home", ("acct_a", "acct_b"), routing="round_robin") as pool:
        async with pool.client() as client:
            answers = [answer_text(kind, await post(client, kind, f"s{i}")) for i in range(4)]
        finished = time.time()
        assert answers[0] and len(set(answers)) == 1  # every request whole, the same answer as B's
        a_requests = simulator.requests_of("acct_a")
        # A was asked once (round robin reaches it in the first two requests), answered 200 with the limit
        # in its stream, and got nothing more while it cools; B served every request
        assert len(a_requests) == 1
        assert a_requests[0].status == 200 and a_requests[0].scenario == "account_usage_limit"
        assert len(simulator.requests_of("acct_b")) == 4
        a = pool.state("acct_a")
        assert a.status is AccountStatus.COOLING and a.cooling_until is not None
        # the event gave only resets_in_seconds: the cooldown runs that long from the failover, not the default
        assert started + RESETS_IN - 2 <= a.cooling_until <= finished + RESETS_IN + 2
        assert pool.state("acct_b").status is AccountStatus.ACTIVE


async def test_with_one_account_the_client_still_gets_the_limit_from_the_stream(
    simulator: UpstreamSimulator, tmp_path: Path
) -> None:
    simulator.set_limit("acct_a", remaining_requests=0, resets_in=RESETS_IN, in_stream=True)
    with pool_gateway(simulator, tmp_path / "home", ("acct_a",)) as pool:
        async with pool.client() as client:
            plain = await post(client, "chat", "s")
            assert plain.status_code == 429
            assert plain.json()["error"]["code"] == "usage_limit_reached"
            streamed = await post(client, "chat_stream", "s")
            errors = [event["error"] for event in data_events(streamed.text) if "error" in event]
            assert errors and errors[0]["code"] == "usage_limit_reached"
        requests = simulator.requests_of("acct_a")
        assert len(requests) == 2 and all(r.status == 200 for r in requests)  # no second try of the same request


# -- the read-ahead over a scripted stream ------------------------------------------------------------


class ScriptedContent:
    """What :class:`UpstreamStream` reads from: the pieces in order, then (optionally) a wait forever."""

    def __init__(self, pieces: list[bytes], *, stall: bool = False) -> None:
        self.pieces = list(pieces)
        self.stall = stall
        self.reads = 0
        self._exception: BaseException | None = None

    async def readany(self) -> bytes:
        self.reads += 1
        if self._exception is not None:
            raise self._exception
        if self.pieces:
            return self.pieces.pop(0)
        if self.stall:
            await asyncio.Event().wait()
        return b""

    def set_exception(self, exc: BaseException) -> None:
        self._exception = exc

    def exception(self) -> BaseException | None:
        return self._exception

    def at_eof(self) -> bool:
        return not self.pieces and not self.stall


class ScriptedResponse:
    def __init__(self, content: ScriptedContent) -> None:
        self.content = content
        self.headers: dict[str, str] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def release(self) -> None:
        self.closed = True


def scripted_stream(pieces: list[bytes], **knobs: Any) -> tuple[UpstreamStream, ScriptedContent]:
    content = ScriptedContent(pieces, **knobs)
    stream = UpstreamStream(response=cast(Any, ScriptedResponse(content)), request_id=None, started_at=0.0)
    return stream, content


def sse(*events: dict[str, Any]) -> bytes:
    return b"".join(encode_event(event) for event in events)


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


async def read_all(stream: UpstreamStream) -> bytes:
    return b"".join([chunk async for chunk in stream.chunks()])


CREATED = {"type": "response.created", "response": {"id": "resp_1", "status": "in_progress"}}
IN_PROGRESS = {"type": "response.in_progress", "response": {"id": "resp_1", "status": "in_progress"}}
RATE_LIMITS = {"type": "codex.rate_limits", "rate_limits": {"primary": {"used_percent": 100.0}}}
ITEM = {"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "id": "msg_1"}}
DELTA = {"type": "response.output_text.delta", "output_index": 0, "delta": "Hello"}
COMPLETED = {"type": "response.completed", "response": {"id": "resp_1", "status": "completed", "output": []}}
LIMIT = {
    "type": "error",
    "error": {
        "type": "usage_limit_reached",
        "code": "usage_limit_reached",
        "message": "limit",
        "resets_in_seconds": 42,
    },
}
FAILED_LIMIT = {
    "type": "response.failed",
    "response": {"id": "resp_1", "status": "failed", "error": {"code": "usage_limit_reached", "message": "limit"}},
}


@pytest.mark.parametrize("size", [1, 7, 64, 100_000])
async def test_an_answer_with_output_is_handed_on_byte_for_byte(size: int) -> None:
    whole = sse(RATE_LIMITS, CREATED, IN_PROGRESS, ITEM, DELTA, DELTA, COMPLETED)
    stream, content = scripted_stream(cut(whole, size))
    head = await read_ahead(stream, max_reads=1_000_000)
    reads_ahead = content.reads
    assert head.usage_limit is None
    assert await read_all(stream) == whole
    # the look stopped once the first output item was whole: not the whole answer read ahead
    item_end = len(sse(RATE_LIMITS, CREATED, IN_PROGRESS, ITEM))
    assert reads_ahead == -(-item_end // size)


async def test_a_limit_in_an_error_event_before_output_is_found_and_the_bytes_not_handed_on() -> None:
    stream, _ = scripted_stream(cut(sse(RATE_LIMITS, CREATED, LIMIT, FAILED_LIMIT), 50))
    head = await read_ahead(stream, max_reads=1_000)
    assert head.usage_limit is not None
    assert head.usage_limit.code == "usage_limit_reached" and head.usage_limit.status_code == 429
    assert head.usage_limit.extra.get("resets_in_seconds") == 42
    assert head.rate_limit_events == [RATE_LIMITS]


async def test_a_limit_only_in_response_failed_is_found() -> None:
    stream, _ = scripted_stream([sse(CREATED, IN_PROGRESS, FAILED_LIMIT)])
    head = await read_ahead(stream)
    assert head.usage_limit is not None and head.usage_limit.code == "usage_limit_reached"


@pytest.mark.parametrize(
    "events",
    [
        (CREATED, ITEM, LIMIT, FAILED_LIMIT),  # after output: the client's answer, as it is
        (CREATED, {"type": "error", "error": {"code": "server_is_overloaded", "message": "busy"}}),  # not a limit
        (CREATED, {**FAILED_LIMIT, "response": {"error": {"code": "rate_limit_exceeded", "message": "slow"}}}),
    ],
)
async def test_anything_but_a_limit_before_output_is_handed_on_whole(events: tuple[dict[str, Any], ...]) -> None:
    whole = sse(*events)
    stream, _ = scripted_stream(cut(whole, 9))
    head = await read_ahead(stream, max_reads=1_000)
    assert head.usage_limit is None
    assert await read_all(stream) == whole


async def test_the_look_is_bounded_in_bytes_reads_and_time() -> None:
    preamble = sse(CREATED, IN_PROGRESS)
    stream, content = scripted_stream([preamble, b": keep-alive\n\n" * 10, sse(ITEM)])
    await read_ahead(stream, max_bytes=len(preamble))
    assert content.reads == 1  # stopped at the byte bound
    assert await read_all(stream) == preamble + b": keep-alive\n\n" * 10 + sse(ITEM)

    stream, content = scripted_stream([b": ping\n\n"] * 20)
    await read_ahead(stream, max_reads=3)
    assert content.reads == 3
    assert await read_all(stream) == b": ping\n\n" * 20

    stream, content = scripted_stream([preamble], stall=True)
    began = time.monotonic()
    head = await read_ahead(stream, seconds=0.2)
    assert head.usage_limit is None and time.monotonic() - began < 5
    assert stream.watch.waiting_since == 0.0  # the given-up read does not count against the read timeout
    assert await stream.read() == preamble  # what came before the pause is the consumer's first read
    stream.close()


async def test_unread_hands_back_before_the_socket_and_only_once() -> None:
    stream, _ = scripted_stream([b"b", b"c"])
    stream.unread(b"")
    stream.unread(b"a")
    assert [await stream.read(), await stream.read(), await stream.read(), await stream.read()] == [
        b"a",
        b"b",
        b"c",
        b"",
    ]
