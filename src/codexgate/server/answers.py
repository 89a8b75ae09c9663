"""How a route answers from a live upstream stream: streamed through a converter, or aggregated.

Both record the call exactly once (usage row, metrics, log) and pass the backend's ``x-codex-*``
rate-limit headers on to the client; both stop reading the upstream (so the backend stops
generating, and spending the user's quota) when the client goes away.
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
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.server.gateway import Call, Gateway
from codexgate.server.streaming import (
    MalformedUpstreamEvent,
    StreamConverter,
    StreamInterrupted,
    StreamOutcome,
    UpstreamStreamResponse,
)
from codexgate.upstream.client import UpstreamStream


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
    )


async def aggregated(
    gateway: Gateway, call: Call, upstream: UpstreamStream, aggregator: Aggregator, receive: Receive
) -> Response:
    """The JSON answer built from the whole stream; a failed stream raises its :class:`APIError`."""
    watcher = asyncio.ensure_future(_interrupt_when_gone(receive, upstream))
    try:
        outcome = await read_whole_stream(upstream, aggregator)
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


async def read_whole_stream(upstream: UpstreamStream, aggregator: Aggregator) -> StreamOutcome:
    """Feed every event to ``aggregator``; raises :class:`APIError` if the connection fails."""
    outcome = StreamOutcome()
    decoder = SSEDecoder()
    complete = False
    try:
        async for data in upstream.chunks():
            for event in decoder.feed(data):
                if event.get("type") == "codex.rate_limits":
                    outcome.rate_limits = event
                aggregator.feed(event)
        for event in decoder.close():
            aggregator.feed(event)
        aggregator.finish()
        complete = True
    except (APIError, StreamInterrupted):
        raise
    except Exception as exc:  # an event the aggregator could not take
        raise protocol_failure(str(MalformedUpstreamEvent(exc))) from None
    finally:
        upstream.close(complete=complete)
    outcome.usage = aggregator.usage
    outcome.finished_at = time.monotonic()
    return outcome
