"""Streaming an upstream answer to the client: bytes in, converted SSE bytes out, never buffered.

:class:`UpstreamStreamResponse` is a pure ASGI response. For each socket read from the upstream it
decodes the events, lets a :class:`StreamConverter` turn them into client bytes, and writes those
in **one** send. Beside the pump it runs two small tasks: one watches for the client's disconnect
(which cancels the pump and closes the upstream connection), one sends an SSE comment during long
silences (hidden reasoning) so proxies and clients keep the connection open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import anyio
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from codexgate.protocol.errors import APIError
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.protocol.sse_writer import KEEPALIVE
from codexgate.upstream.client import UpstreamStream
from codexgate.upstream.errors import broken_mid_stream, upstream_timeout

logger = logging.getLogger("codexgate.server")


@dataclass
class StreamOutcome:
    """What happened to one stream, for the usage row, metrics and the access log."""

    status: int = 200
    error_code: str | None = None
    usage: Mapping[str, Any] | None = None
    first_output_at: float | None = None
    finished_at: float | None = None
    client_disconnected: bool = False
    rate_limits: Mapping[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class StreamConverter(Protocol):
    """Turns upstream events into client bytes (chat chunks, or Responses events)."""

    def convert(self, events: list[dict[str, Any]]) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: APIError) -> bytes: ...
    def has_output(self) -> bool: ...
    def outcome(self, outcome: StreamOutcome) -> None: ...


async def _no_body() -> AsyncIterator[bytes]:  # pragma: no cover - __call__ replaces the iteration
    yield b""


class UpstreamStreamResponse(StreamingResponse):
    """A Starlette response (so FastAPI returns it as is) with its own ASGI ``__call__``."""

    def __init__(
        self,
        upstream: UpstreamStream,
        converter: StreamConverter,
        *,
        headers: Mapping[str, str],
        keepalive_interval: float,
        read_timeout: float,
        on_done: Callable[[StreamOutcome], None],
        stop: asyncio.Event | None = None,
    ) -> None:
        super().__init__(_no_body(), status_code=200, headers=dict(headers), media_type="text/event-stream")
        self.upstream = upstream
        self.converter = converter
        self.extra_headers = headers
        self.keepalive_interval = keepalive_interval
        self.read_timeout = read_timeout
        self.on_done = on_done
        self.stop = stop
        self.stopped = False
        self.outcome = StreamOutcome()
        self._last_send = 0.0
        self._final_sent = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        raw_headers += [(key.encode("latin-1"), value.encode("latin-1")) for key, value in self.extra_headers.items()]
        complete = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": raw_headers})
            self._last_send = time.monotonic()
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_disconnect, receive, group.cancel_scope)
                group.start_soon(self._keepalive, send)
                if self.stop is not None:
                    group.start_soon(self._watch_stop, self.stop, group.cancel_scope)
                complete = await self._pump(send)
                group.cancel_scope.cancel()
            if self.stopped and not self.outcome.client_disconnected:
                error = APIError(
                    503,
                    "The gateway is shutting down; the stream was ended after the grace period.",
                    type="server_error",
                    code="server_shutting_down",
                )
                self.outcome.status, self.outcome.error_code = 503, error.code
                self._final_sent = True
                await send({"type": "http.response.body", "body": self.converter.fail(error), "more_body": False})
        except OSError:
            # the client went away while we were writing
            self.outcome.client_disconnected = True
        finally:
            self.upstream.close(complete=complete)
            if self.outcome.client_disconnected and self.outcome.error_code is None:
                self.outcome.status = 499
                self.outcome.error_code = "client_disconnected"
            self.outcome.finished_at = time.monotonic()
            self.converter.outcome(self.outcome)
            self.on_done(self.outcome)

    async def _watch_disconnect(self, receive: Receive, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # after the last body message the server reports a disconnect too: not the client's doing
                if not self._final_sent:
                    self.outcome.client_disconnected = True
                    scope.cancel()
                return

    async def _watch_stop(self, stop: asyncio.Event, scope: anyio.CancelScope) -> None:
        await stop.wait()
        self.stopped = True
        scope.cancel()

    async def _keepalive(self, send: Send) -> None:
        interval = self.keepalive_interval
        while True:
            await anyio.sleep(interval)
            if time.monotonic() - self._last_send >= interval:
                self._last_send = time.monotonic()
                await send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True})

    async def _pump(self, send: Send) -> bool:
        """Copy the stream; True when the upstream body was read to its end."""
        decoder = SSEDecoder()
        converter = self.converter
        error: APIError | None = None
        try:
            async for data in self.upstream.chunks():
                out = converter.convert(decoder.feed(data))
                if out:
                    if self.outcome.first_output_at is None and converter.has_output():
                        self.outcome.first_output_at = time.monotonic()
                    self._last_send = time.monotonic()
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = converter.convert(decoder.close()) + converter.finish()
        except TimeoutError:
            error = upstream_timeout(self.read_timeout)
        except aiohttp.ClientError as exc:
            error = broken_mid_stream(exc)
        if error is not None:
            logger.info("upstream stream failed: %s", error.code)
            tail = converter.fail(error)
        self._final_sent = True
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        return error is None
