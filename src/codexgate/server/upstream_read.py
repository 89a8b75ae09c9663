"""Reading a whole upstream stream for a non-streaming client (the answer is aggregated)."""

from __future__ import annotations

import time
from typing import Any, Protocol

import aiohttp

from codexgate.protocol.errors import APIError
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.server.streaming import StreamOutcome
from codexgate.upstream.client import UpstreamStream
from codexgate.upstream.errors import upstream_timeout


class Aggregator(Protocol):
    def feed(self, event: dict[str, Any]) -> Any: ...
    def finish(self) -> Any: ...
    @property
    def usage(self) -> Any: ...


async def read_whole_stream(upstream: UpstreamStream, aggregator: Aggregator, read_timeout: float) -> StreamOutcome:
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
    except TimeoutError:
        raise upstream_timeout(read_timeout) from None
    except aiohttp.ClientError as exc:
        raise APIError(
            502,
            f"The connection to the Codex backend broke mid-stream ({type(exc).__name__}).",
            type="upstream_error",
            code="upstream_disconnected",
        ) from None
    finally:
        upstream.close(complete=complete)
    outcome.usage = aggregator.usage
    outcome.finished_at = time.monotonic()
    return outcome
