"""Streaming an upstream answer to the client: bytes in, converted SSE bytes out, never buffered.

:class:`UpstreamStreamResponse` is a pure ASGI response. Its pump, in the request's own task, takes
whatever bytes each upstream read produced, decodes the events, lets a :class:`StreamConverter` turn
them into client bytes and writes those in **one** send. Beside it, one small task waits for the
client to disconnect; a gateway shutdown ends every stream still open after the grace period through
:class:`OpenStreams`. Either interrupts the pump's upstream read (the upstream connection is then
closed, so the backend stops generating). One timer per stream sends an SSE comment during long
silences (hidden reasoning) so proxies and clients keep the connection open: the converter's
``keepalive_bytes`` when it has that attribute (Anthropic's ``ping`` event), else an SSE comment.

What the upstream sends is bounded: one event larger than ``max_event_size`` ends the stream with
``upstream_protocol_error`` (the decoder's limit), and reading stops as soon as the decoder failed or
the converter saw its terminal event (a converter may say so with an ``ended()`` method): the client
gets its last message at once, whatever the backend keeps sending. After a terminal event the rest of
the body is drained briefly (:meth:`~codexgate.upstream.client.UpstreamStream.drain`) so the upstream
connection can be reused; after a failure it is closed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from codexgate.errors import APIError
from codexgate.protocol.outcome import protocol_failure
from codexgate.protocol.sse_decoder import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from codexgate.protocol.sse_writer import KEEPALIVE
from codexgate.server.errors import header_pairs
from codexgate.upstream.client import UpstreamStream

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
    """Turns upstream events into client bytes (chat chunks, or Responses events).

    Optionally a converter has ``keepalive_bytes``: what a long silence sends (default :data:`KEEPALIVE`).
    """

    def convert(self, events: list[dict[str, Any]]) -> bytes: ...
    def finish(self) -> bytes: ...
    def fail(self, error: APIError) -> bytes: ...
    def has_output(self) -> bool: ...
    def outcome(self, outcome: StreamOutcome) -> None: ...


def ended_check(converter: object) -> Callable[[], bool]:
    """The converter's ``ended()`` (True once it saw its terminal event), or one that is never true."""
    ended = getattr(converter, "ended", None)
    return ended if callable(ended) else _never


def _never() -> bool:
    return False


STREAM_HEADERS: Final = (
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
)


#: before the first token, a read with more events than this is sent in two parts
FIRST_SLICE: Final = 8


class StreamInterrupted(Exception):
    """Raised by the pump's upstream read when the client left or the gateway is stopping."""


class MalformedUpstreamEvent(Exception):
    """An upstream event the converter could not take (a field of the wrong type, say)."""

    def __init__(self, exc: Exception) -> None:
        super().__init__(f"The Codex backend sent an event that could not be translated ({type(exc).__name__}).")


class OpenStreams:
    """The streams being pumped, so that a shutdown can end them all (no watcher task per stream)."""

    def __init__(self) -> None:
        self._streams: set[UpstreamStreamResponse] = set()
        self.stopped = False

    def __len__(self) -> int:
        return len(self._streams)

    def add(self, stream: UpstreamStreamResponse) -> None:
        self._streams.add(stream)
        if self.stopped:
            stream.stop()

    def discard(self, stream: UpstreamStreamResponse) -> None:
        self._streams.discard(stream)

    def stop_all(self) -> None:
        """End every open stream with a ``server_shutting_down`` error (the grace period is over)."""
        self.stopped = True
        for stream in list(self._streams):
            stream.stop()


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
        on_done: Callable[[StreamOutcome], None],
        open_streams: OpenStreams | None = None,
        max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    ) -> None:
        self.status_code = 200
        self.media_type = "text/event-stream"
        self.background = None
        self.raw_headers = [*STREAM_HEADERS]
        self.raw_headers += header_pairs(headers)
        self.upstream = upstream
        self.converter = converter
        self.keepalive_interval = keepalive_interval
        keepalive_bytes = getattr(converter, "keepalive_bytes", KEEPALIVE)
        self.keepalive_bytes: bytes = keepalive_bytes if isinstance(keepalive_bytes, bytes) else KEEPALIVE
        self.on_done = on_done
        self.open_streams = open_streams
        self.max_event_size = max_event_size
        self.stopped = False
        #: why reading stopped before the end of the body: "ended" (terminal event) or "failed"
        self.stopped_early: str | None = None
        self.outcome = StreamOutcome()
        self._last_send = 0.0
        self._final_sent = False
        self._pumping = False
        self._keepalive_timer: asyncio.TimerHandle | None = None
        self._keepalive_sends: set[asyncio.Future[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        complete = False
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            self._last_send = time.monotonic()
            complete = await self._run(receive, send)
        except OSError:
            # the client went away while we were writing
            self.outcome.client_disconnected = True
        finally:
            self.upstream.close(complete=complete)
            if self.outcome.client_disconnected and self.outcome.error_code is None:
                self.outcome.status = 499
                self.outcome.error_code = "client_disconnected"
            self.outcome.finished_at = time.monotonic()
            try:
                self.converter.outcome(self.outcome)
            except Exception:  # a converter broken by a malformed event: record what is known
                logger.warning("could not read the outcome of a failed stream", exc_info=True)
            self.on_done(self.outcome)

    def stop(self) -> None:
        """End the stream now with a ``server_shutting_down`` error; a no-op once it has ended."""
        if self._pumping and not self._final_sent:
            self.stopped = True
            self.upstream.interrupt(StreamInterrupted("the gateway is shutting down"))

    async def _run(self, receive: Receive, send: Send) -> bool:
        """Pump (in this task: the first token goes out without waiting for another one to start)
        while a small task waits for the client to leave; True when the upstream body was read whole."""
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self._watch_disconnect(receive))
        self._keepalive_timer = loop.call_later(self.keepalive_interval, self._keepalive_due, send)
        self._pumping = True
        if self.open_streams is not None:
            self.open_streams.add(self)
        try:
            return await self._pump(send)
        finally:
            self._pumping = False
            if self.open_streams is not None:
                self.open_streams.discard(self)
            if self._keepalive_timer is not None:
                self._keepalive_timer.cancel()
            for task in (watcher, *self._keepalive_sends):
                task.cancel()

    async def _watch_disconnect(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        # after the last body message the server reports a disconnect too: not the client's doing
        if self._pumping and not self._final_sent:
            self.outcome.client_disconnected = True
            self.upstream.interrupt(StreamInterrupted("the client disconnected"))

    def _keepalive_due(self, send: Send) -> None:
        """Timer: after ``keepalive_interval`` without a send, send the keep-alive bytes."""
        if not self._pumping or self._final_sent:  # (draining after the last message: nothing more to send)
            return
        interval = self.keepalive_interval
        loop = asyncio.get_running_loop()
        if time.monotonic() - self._last_send >= interval:
            self._last_send = time.monotonic()
            message = {"type": "http.response.body", "body": self.keepalive_bytes, "more_body": True}
            task = asyncio.ensure_future(send(message))
            self._keepalive_sends.add(task)
            task.add_done_callback(self._keepalive_sent)
        self._keepalive_timer = loop.call_later(interval, self._keepalive_due, send)

    def _keepalive_sent(self, task: asyncio.Future[None]) -> None:
        self._keepalive_sends.discard(task)
        if not task.cancelled():
            task.exception()  # a client gone mid-write: the pump notices it on its own send

    async def _pump(self, send: Send) -> bool:
        """Copy the stream and send its last message; True when the upstream body was read whole."""
        try:
            tail = await self._copy(send)
        except StreamInterrupted:
            if not self.stopped:
                return False  # the client left: nothing more to send
            tail = self._fail(
                APIError(
                    503,
                    "The gateway is shutting down; the stream was ended after the grace period.",
                    type="server_error",
                    code="server_shutting_down",
                )
            )
            complete = False
        except APIError as error:  # the upstream read failed (timeout, broken connection)
            tail, complete = self._fail(error), False
        except MalformedUpstreamEvent as exc:
            tail, complete = self._fail(protocol_failure(str(exc))), False
        else:
            complete = self.stopped_early != "failed"
        self._final_sent = True
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        if complete and self.stopped_early == "ended":
            complete = await self.upstream.drain()  # the client has its answer; reuse the connection
        return complete

    def _fail(self, error: APIError) -> bytes:
        if error.code != "server_shutting_down":
            logger.info("upstream stream failed: %s", error.code)
        self.outcome.status, self.outcome.error_code = error.status_code, error.code
        return self.converter.fail(error)

    async def _copy(self, send: Send) -> bytes:
        """Every upstream read, converted and sent in one message; the converter's tail at the end."""
        decoder = SSEDecoder(self.max_event_size)
        converter = self.converter
        ended = ended_check(converter)
        read = self.upstream.read
        monotonic = time.monotonic
        outcome = self.outcome
        while True:
            data = await read()
            if not data:
                try:
                    return converter.convert(decoder.close()) + converter.finish()
                except Exception as exc:
                    raise MalformedUpstreamEvent(exc) from exc
            events = decoder.feed(data)
            # A large read before the first token (a backlog) goes out in two parts: its first
            # events (where the first token is) before the rest of it is converted.
            parts: tuple[list[dict[str, Any]], ...] = (events,)
            if outcome.first_output_at is None and len(events) > FIRST_SLICE:
                parts = (events[:FIRST_SLICE], events[FIRST_SLICE:])
            for part in parts:
                try:
                    out = converter.convert(part)
                except Exception as exc:
                    raise MalformedUpstreamEvent(exc) from exc
                if out:
                    if outcome.first_output_at is None and converter.has_output():
                        outcome.first_output_at = monotonic()
                    self._last_send = monotonic()
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            if decoder.failed or ended():
                self.stopped_early = "failed" if decoder.failed else "ended"
                try:
                    return converter.finish()
                except Exception as exc:
                    raise MalformedUpstreamEvent(exc) from exc
