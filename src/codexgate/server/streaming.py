"""Streaming an upstream answer to the client: bytes in, converted SSE bytes out, never buffered.

:class:`UpstreamStreamResponse` is a pure ASGI response. For each socket read from the upstream it
decodes the events, lets a :class:`StreamConverter` turn them into client bytes, and writes those
in **one** send. Beside the pump, small tasks watch for the client's disconnect and for the gateway
stopping (either cancels the pump and closes the upstream connection), and a timer sends an SSE
comment during long silences (hidden reasoning) so proxies and clients keep the connection open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiohttp
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


STREAM_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


class UpstreamStreamResponse(StreamingResponse):
    """A Starlette response (so FastAPI returns it as is) with its own ASGI ``__call__``.

    Its parent's ``__init__`` is not called: there is no body iterator, and :attr:`raw_headers` (which
    the layer in front may extend with ``x-request-id``) is all the parent's fields that are read.
    """

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
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.raw_headers = [*STREAM_HEADERS]
        self.raw_headers += [(key.encode("latin-1"), value.encode("latin-1")) for key, value in headers.items()]
        self.upstream = upstream
        self.converter = converter
        self.keepalive_interval = keepalive_interval
        self.read_timeout = read_timeout
        self.on_done = on_done
        self.stop = stop
        self.stopped = False
        self.outcome = StreamOutcome()
        self._last_send = 0.0
        self._final_sent = False
        self._pumping = False
        self._interrupted = False
        self._pump_task: asyncio.Task[Any] | None = None
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._keepalive_sends: set[asyncio.Future[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        complete = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            self._last_send = time.monotonic()
            complete = await self._pump_watched(receive, send)
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

    async def _pump_watched(self, receive: Receive, send: Send) -> bool:
        """Run the pump in this task while the watchers may interrupt it; True when it completed.

        Plain asyncio rather than a task group: two small watcher tasks (client disconnect,
        gateway stop) and a timer for keep-alives cost far less per stream than three tasks
        under a cancel scope, and this runs once per request.
        """
        loop = asyncio.get_running_loop()
        self._pump_task = asyncio.current_task()
        watchers = [loop.create_task(self._watch_disconnect(receive))]
        if self.stop is not None:
            watchers.append(loop.create_task(self._watch_stop(self.stop)))
        self._keepalive_timer = loop.call_later(self.keepalive_interval, self._keepalive_due, send)
        self._pumping = True
        try:
            return await self._pump(send)
        except asyncio.CancelledError:
            if not self._interrupted:
                raise  # cancelled from outside (server shutdown): not ours to swallow
            if self._pump_task is not None:
                self._pump_task.uncancel()
            return False
        finally:
            self._pumping = False
            if self._keepalive_timer is not None:
                self._keepalive_timer.cancel()
            for task in (*watchers, *self._keepalive_sends):
                task.cancel()

    def _interrupt(self) -> None:
        """End the pump (client gone, or the gateway stopping); a no-op once it has finished."""
        if self._pumping and not self._interrupted and self._pump_task is not None:
            self._interrupted = True
            self._pump_task.cancel()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                # after the last body message the server reports a disconnect too: not the client's doing
                if not self._final_sent:
                    self.outcome.client_disconnected = True
                    self._interrupt()
                return

    async def _watch_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        if self._pumping:
            self.stopped = True
            self._interrupt()

    def _keepalive_due(self, send: Send) -> None:
        """Timer: after ``keepalive_interval`` without a send, send an SSE comment."""
        if not self._pumping:
            return
        interval = self.keepalive_interval
        loop = asyncio.get_running_loop()
        if time.monotonic() - self._last_send >= interval:
            self._last_send = time.monotonic()
            task = asyncio.ensure_future(send({"type": "http.response.body", "body": KEEPALIVE, "more_body": True}))
            self._keepalive_sends.add(task)
            task.add_done_callback(self._keepalive_sent)
        self._keepalive_timer = loop.call_later(interval, self._keepalive_due, send)

    def _keepalive_sent(self, task: asyncio.Future[None]) -> None:
        self._keepalive_sends.discard(task)
        if not task.cancelled():
            task.exception()  # a client gone mid-write: the pump notices it on its own send

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
