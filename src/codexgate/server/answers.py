"""How a route answers from a live upstream stream: streamed through a converter, or aggregated.

Both record the call exactly once (usage row, metrics, log) and pass the backend's ``x-codex-*``
rate-limit headers on to the client; both stop reading the upstream (so the backend stops
generating, and spending the user's quota) when the client goes away.

A non-streamed answer reads at most ``max_answer_size`` upstream bytes (then it fails with
``upstream_protocol_error``), each event at most ``max_event_size``; reading stops at the
aggregator's terminal event or the decoder's failure (the rest drained briefly for reuse, or closed).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import orjson
from starlette.responses import Response
from starlette.types import Receive

from codexgate.errors import APIError
from codexgate.protocol.outcome import protocol_failure
from codexgate.protocol.sse_decoder import DEFAULT_MAX_EVENT_SIZE, SSEDecoder
from codexgate.server.gateway import Call, Gateway
from codexgate.server.streaming import (
    MalformedUpstreamEvent,
    StreamConverter,
    StreamInterrupted,
    StreamOutcome,
    UpstreamStreamResponse,
)
from codexgate.upstream.client import UpstreamStream

DEFAULT_MAX_ANSWER_SIZE = 64 * 1024 * 1024


class Aggregator(Protocol):
    def feed(self, event: dict[str, Any]) -> Any: ...
    def finish(self) -> Any: ...
    def result(self) -> dict[str, Any]: ...
    @property
    def usage(self) -> Any: ...


def streamed(gateway: Gateway, call: Call, upstream: UpstreamStream, converter: StreamConverter) -> Response:
    """The SSE answer: upstream events through ``converter``, one send per upstream read."""
    settings = gateway.settings
    return UpstreamStreamResponse(
        upstream,
        converter,
        headers=upstream.codex_headers(),
        keepalive_interval=settings.server.keepalive_interval,
        on_done=call.finish,
        open_streams=gateway.open_streams,
        max_event_size=settings.limits.max_event_size,
    )


async def aggregated(
    gateway: Gateway, call: Call, upstream: UpstreamStream, aggregator: Aggregator, receive: Receive
) -> Response:
    """The JSON answer built from the whole stream; a failed stream raises its :class:`APIError`."""
    watcher = asyncio.ensure_future(_interrupt_when_gone(receive, upstream))
    try:
        limits = gateway.settings.limits
        outcome = await read_whole_stream(
            upstream, aggregator, max_event_size=limits.max_event_size, max_answer_size=limits.max_answer_size
        )
        try:
            result = aggregator.result()
        except APIError:
            raise
        except Exception as exc:
            raise protocol_failure(str(MalformedUpstreamEvent(exc))) from None
    except APIError as error:
        call.fail(error)
        error.headers.update(upstream.codex_headers())
        raise
    except StreamInterrupted:  # nobody is left to answer
        call.finish(StreamOutcome(status=499, error_code="client_disconnected", client_disconnected=True))
        return Response(status_code=499)
    finally:
        watcher.cancel()
    call.finish(outcome)
    return Response(orjson.dumps(result), media_type="application/json", headers=upstream.codex_headers())


async def _interrupt_when_gone(receive: Receive, upstream: UpstreamStream) -> None:
    """Wait for the client to disconnect (the body has been read: nothing else can come)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    upstream.interrupt(StreamInterrupted("the client disconnected"))


async def read_whole_stream(
    upstream: UpstreamStream,
    aggregator: Aggregator,
    *,
    max_event_size: int = DEFAULT_MAX_EVENT_SIZE,
    max_answer_size: int = DEFAULT_MAX_ANSWER_SIZE,
) -> StreamOutcome:
    """Feed every event to ``aggregator``; raises :class:`APIError` if the connection fails or the
    answer is larger than ``max_answer_size`` bytes."""
    outcome = StreamOutcome()
    decoder = SSEDecoder(max_event_size)
    complete = False
    received = 0
    try:
        async for data in upstream.chunks():
            received += len(data)
            if received > max_answer_size:
                raise answer_too_large(max_answer_size)
            for event in decoder.feed(data):
                if event.get("type") == "codex.rate_limits":
                    outcome.rate_limits = event
                aggregator.feed(event)
            if decoder.failed or getattr(aggregator, "done", False):
                complete = not decoder.failed and await upstream.drain()
                break
        else:
            for event in decoder.close():
                aggregator.feed(event)
            complete = True
        aggregator.finish()
    except (APIError, StreamInterrupted):
        complete = False
        raise
    except Exception as exc:  # an event the aggregator could not take
        complete = False
        raise protocol_failure(str(MalformedUpstreamEvent(exc))) from None
    finally:
        upstream.close(complete=complete)
    outcome.usage = aggregator.usage
    outcome.finished_at = time.monotonic()
    return outcome


def answer_too_large(limit: int) -> APIError:
    return protocol_failure(
        f"The Codex backend's answer is larger than {limit} bytes (setting max_answer_size); it was not read whole."
    )
