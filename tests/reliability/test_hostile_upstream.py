"""Issue 20 items 6 (what the upstream sends is bounded) and 8 (a client that leaves while the upstream
has not answered), and issue 18's in-stream usage limit: a small hostile backend of the test's own on
loopback, in front of a real gateway served by uvicorn. Each test is bounded in time: the hostile
backend never ends on its own, so only the gateway's limits can end the request."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from codexgate.server.app import create_app
from codexgate.server.asgi import GatewayASGI
from tests.helpers import serve_in_thread, settings_for, write_auth_json

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Seen"], Awaitable[None]]
CHAT_BODY = {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}


@dataclass
class Seen:
    """What the hostile backend saw."""

    heads: list[bytes] = field(default_factory=list)
    closed: threading.Event = field(default_factory=threading.Event)
    sent_bytes: int = 0


def _posts(seen: Seen) -> int:
    return sum(1 for head in seen.heads if head.startswith(b"POST "))


def event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def created() -> bytes:
    return event({"type": "response.created", "response": {"id": "resp_1", "model": "gpt-5"}})


def delta(text: str) -> bytes:
    return event({"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "delta": text})


def completed() -> bytes:
    usage = {"input_tokens": 3, "output_tokens": 2, "total_tokens": 5}
    message = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "done here", "annotations": []}],
    }
    response = {"id": "resp_1", "status": "completed", "usage": usage, "output": [message]}
    return event({"type": "response.completed", "response": response})


#: this backend closes every connection after one answer, and says so (else the gateway could reuse a
#: connection it is about to close, and a test with no retries would see a transport error instead)
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
)


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


async def send_forever(writer: asyncio.StreamWriter, seen: Seen, piece: bytes, limit_seconds: float = 30.0) -> None:
    """Keep sending ``piece`` until the gateway closes the connection (or the test's own bound)."""
    deadline = time.monotonic() + limit_seconds
    while time.monotonic() < deadline:
        writer.write(chunk(piece))
        seen.sent_bytes += len(piece)
        await writer.drain()
        await asyncio.sleep(0)


@contextmanager
def hostile_backend(handler: Handler) -> Iterator[tuple[str, Seen]]:
    """An HTTP/1.1 server on loopback whose every answer is ``handler``'s (it writes the raw bytes)."""
    seen = Seen()
    loop = asyncio.new_event_loop()
    started = threading.Event()
    port_box: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            seen.heads.append(head)
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            await handler(reader, writer, seen)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            seen.closed.set()
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port_box.append(server.sockets[0].getsockname()[1])
        started.set()
        async with server:
            with contextlib.suppress(asyncio.CancelledError):
                await server.serve_forever()

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield f"http://127.0.0.1:{port_box[0]}/codex", seen
    finally:
        for task in asyncio.all_tasks(loop):
            loop.call_soon_threadsafe(task.cancel)
        thread.join(timeout=10)


@contextmanager
def gateway_before(upstream_url: str, home: Path, **overrides: Any) -> Iterator[tuple[str, GatewayASGI]]:
    write_auth_json(home)
    settings = settings_for(home, upstream_url, upstream_retries=0, **overrides)
    app = create_app(settings)
    with serve_in_thread(app) as served:
        yield served.base_url, app


def _active(app: GatewayASGI) -> int:
    active: int = app.state.gateway.limiter.active
    return active


def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.02)


# ---- item 6: events, answers, encodings ------------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_an_event_over_max_event_size_ends_the_request(tmp_path: Path, stream: bool) -> None:
    async def huge_event(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        writer.write(SSE_HEAD + chunk(created() + delta("before")) + chunk(b"data: {" + b'"x": "'))
        await writer.drain()
        await send_forever(writer, seen, b"y" * 65536)  # one event that never ends

    with (
        hostile_backend(huge_event) as (url, seen),
        gateway_before(url, tmp_path / "home", max_event_size=256 * 1024) as (base, app),
    ):
        started = time.monotonic()
        response = httpx.post(base + "/v1/chat/completions", json={**CHAT_BODY, "stream": stream}, timeout=20)
        elapsed = time.monotonic() - started
        assert "upstream_protocol_error" in response.text or "invalid_upstream_event" in response.text
        if stream:
            assert response.status_code == 200 and "before" in response.text and "[DONE]" not in response.text
        else:
            assert response.status_code == 502
        assert seen.closed.wait(10)  # the gateway hung up on it
        assert elapsed < 10 and seen.sent_bytes < 64 * 1024 * 1024
        _eventually(lambda: _active(app) == 0)


def test_a_non_streamed_answer_over_max_answer_size_fails_cleanly(tmp_path: Path) -> None:
    async def endless(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        writer.write(SSE_HEAD + chunk(created()))
        await writer.drain()
        await send_forever(writer, seen, delta("z" * 4000) * 16)  # small events, forever

    with (
        hostile_backend(endless) as (url, seen),
        gateway_before(url, tmp_path / "home", max_answer_size=2 * 1024 * 1024) as (base, app),
    ):
        for path, body in (
            ("/v1/chat/completions", CHAT_BODY),
            ("/v1/responses", {"model": "gpt-5", "input": "hi"}),
        ):
            seen.closed.clear()
            response = httpx.post(base + path, json=body, timeout=20)
            assert response.status_code == 502, response.text
            error = response.json()["error"]
            assert error["code"] == "upstream_protocol_error" and "max_answer_size" in error["message"]
            assert seen.closed.wait(10)
            _eventually(lambda: _active(app) == 0)


def test_compressed_answers_are_never_decompressed(tmp_path: Path) -> None:
    bomb = gzip.compress(b"data: " + b" " * (32 * 1024 * 1024) + b"\n\n")  # 32 MiB from ~32 KiB

    async def compressed(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\nconnection: close\r\n"
            + f"content-length: {len(bomb)}\r\n\r\n".encode()
            + bomb
        )
        await writer.drain()

    with hostile_backend(compressed) as (url, seen), gateway_before(url, tmp_path / "home") as (base, app):
        for stream in (True, False):
            response = httpx.post(base + "/v1/chat/completions", json={**CHAT_BODY, "stream": stream}, timeout=20)
            assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_protocol_error"
        assert all(b"accept-encoding: identity" in head.lower() for head in seen.heads)
        _eventually(lambda: _active(app) == 0)


@pytest.mark.parametrize("stream", [True, False])
def test_reading_stops_at_the_terminal_event(tmp_path: Path, stream: bool) -> None:
    async def chatty(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        writer.write(SSE_HEAD + chunk(created() + delta("done here") + completed()))
        await writer.drain()
        await send_forever(writer, seen, delta("ignored") * 8)  # the backend goes on after its end

    with hostile_backend(chatty) as (url, seen), gateway_before(url, tmp_path / "home") as (base, app):
        started = time.monotonic()
        response = httpx.post(base + "/v1/chat/completions", json={**CHAT_BODY, "stream": stream}, timeout=20)
        assert time.monotonic() - started < 8
        assert response.status_code == 200 and "done here" in response.text and "ignored" not in response.text
        if stream:
            assert response.text.rstrip().endswith("data: [DONE]")
        assert seen.closed.wait(10)
        _eventually(lambda: _active(app) == 0)


# ---- item 8: the client leaves while the backend has not answered ------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_leaves_before_the_upstream_head_frees_its_slot(tmp_path: Path, stream: bool) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        await reader.read()  # never answers; returns when the gateway hangs up

    with (
        hostile_backend(silent) as (url, seen),
        gateway_before(url, tmp_path / "home", read_timeout=60.0) as (base, app),
    ):
        rows: list[Any] = []
        writer = app.state.gateway.usage_writer
        original = writer.submit

        def submit(record: Any) -> Any:
            rows.append(record)
            return original(record)

        writer.submit = submit
        host, port = base.removeprefix("http://").split(":")
        body = json.dumps({**CHAT_BODY, "stream": stream}).encode()
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            # (a GET of the model catalog may come first: that silent answer is waited for only briefly)
            _eventually(lambda: _active(app) == 1 and _posts(seen) == 1)
        left = time.monotonic()
        _eventually(lambda: _active(app) == 0, within=5)
        assert seen.closed.wait(5)  # the upstream request was cancelled, not left to read_timeout
        assert time.monotonic() - left < 5
        _eventually(lambda: len(rows) == 1, within=5)
        assert rows[0].status == 499 and rows[0].error_code == "client_disconnected"


# ---- issue 18: a usage limit inside the stream ---------------------------------------------------


@pytest.mark.parametrize("stream", [True, False])
def test_a_usage_limit_inside_the_stream_carries_the_reset_fields(tmp_path: Path, stream: bool) -> None:
    limit = {
        "type": "error",
        "error": {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": "plus",
            "resets_at": 1_900_000_000,
            "resets_in_seconds": 7200,
        },
    }

    async def limited(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Seen) -> None:
        writer.write(SSE_HEAD + chunk(created() + event(limit)) + chunk(b""))
        await writer.drain()

    with hostile_backend(limited) as (url, _seen), gateway_before(url, tmp_path / "home") as (base, app):
        response = httpx.post(base + "/v1/chat/completions", json={**CHAT_BODY, "stream": stream}, timeout=20)
        if stream:
            payloads = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: {")]
            errors = [p["error"] for p in payloads if "error" in p]
            assert errors, response.text[-800:]
            error = errors[0]
        else:
            assert response.status_code == 429 and response.headers["retry-after"] == "7200"
            error = response.json()["error"]
        assert error["code"] == "usage_limit_reached"
        assert (error["plan_type"], error["resets_at"], error["resets_in_seconds"]) == ("plus", 1_900_000_000, 7200)
        _eventually(lambda: _active(app) == 0)
