"""A look at the head of a live stream before it is handed on: a usage limit reported before any output.

The backend may accept a request (200) and then report ``usage_limit_reached`` inside the stream — an
``error`` event and/or a ``response.failed`` — before any output. With several accounts that is as good
as a 429: the account pool can still give the request to another account. :func:`read_ahead` reads the
stream's first bytes (through :meth:`UpstreamStream.read`, so the read timeout and the pool's content
scanner see them) until the first event that is not preamble (``response.created``,
``response.in_progress``, ``codex.rate_limits``), or a bound (bytes, reads, seconds). Every byte it read
is pushed back (:meth:`UpstreamStream.unread`) unless it found a usage limit; then the caller closes the
stream and fails over.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from codexgate.errors import APIError
from codexgate.protocol.outcome import error_from_error_event, error_from_failed_response
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.upstream.client import UpstreamStream

__all__ = ["READ_AHEAD_BYTES", "READ_AHEAD_READS", "READ_AHEAD_SECONDS", "ReadAhead", "read_ahead", "usage_limit_in"]

READ_AHEAD_BYTES: Final = 64 * 1024
READ_AHEAD_READS: Final = 8
READ_AHEAD_SECONDS: Final = 2.0

USAGE_LIMIT_CODE: Final = "usage_limit_reached"
_PREAMBLE: Final = frozenset(("response.created", "response.in_progress", "response.queued", "codex.rate_limits"))


@dataclass(slots=True)
class ReadAhead:
    """What the head of a stream said: a usage limit before any output (else None), and the
    ``codex.rate_limits`` events seen (for the account's windows when the stream is dropped)."""

    usage_limit: APIError | None = None
    rate_limit_events: list[dict[str, Any]] = field(default_factory=list)


def usage_limit_in(event: Mapping[str, Any]) -> APIError | None:
    """The error of an ``error`` / ``response.failed`` event when it is ``usage_limit_reached``."""
    kind = event.get("type")
    if kind == "error":
        error = error_from_error_event(event)
    elif kind == "response.failed":
        response = event.get("response")
        error = error_from_failed_response(response if isinstance(response, Mapping) else None)
    else:
        return None
    return error if error.code == USAGE_LIMIT_CODE else None


async def read_ahead(
    stream: UpstreamStream,
    *,
    max_bytes: int = READ_AHEAD_BYTES,
    max_reads: int = READ_AHEAD_READS,
    seconds: float = READ_AHEAD_SECONDS,
) -> ReadAhead:
    """Read the head of ``stream`` (see the module's docstring). A read's failure (timeout, broken
    connection) raises as :meth:`UpstreamStream.read` raises it; the bytes read so far are then lost,
    and the caller drops the stream."""
    found = ReadAhead()
    decoder = SSEDecoder()
    taken: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(seconds):
            for _ in range(max_reads):
                data = await stream.read()
                if not data:
                    _look(decoder.close(), found)
                    break
                taken.append(data)
                size += len(data)
                if _look(decoder.feed(data), found) or size >= max_bytes:
                    break
    except TimeoutError:
        stream.watch.waiting_since = 0.0  # the read was given up, not the upstream's silence: no timeout
    if found.usage_limit is None:
        stream.unread(b"".join(taken))
    return found


def _look(events: list[dict[str, Any]], found: ReadAhead) -> bool:
    """Look at ``events`` in order; True once one is not preamble (the look-ahead is over)."""
    for event in events:
        kind = event.get("type")
        if kind in _PREAMBLE:
            if kind == "codex.rate_limits":
                found.rate_limit_events.append(event)
            continue
        if kind == "error" or kind == "response.failed":
            found.usage_limit = usage_limit_in(event)
        return True
    return False
