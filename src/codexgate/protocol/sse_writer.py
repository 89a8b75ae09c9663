"""Chat chunks and Responses events to Server-Sent Events bytes (orjson, no I/O)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

DONE: Final = b"data: [DONE]\n\n"
KEEPALIVE: Final = b": keep-alive\n\n"

_dumps = orjson.dumps


def encode_chunk(chunk: Mapping[str, Any]) -> bytes:
    """One ``data: <json>\\n\\n`` frame (Chat Completions streams carry no ``event:`` line)."""
    return b"data: " + _dumps(chunk) + b"\n\n"


def encode_chunks(chunks: Sequence[Mapping[str, Any]]) -> bytes:
    """Several frames joined, to be written in one send."""
    if len(chunks) == 1:  # the common case of a paced stream: one event per read, one chunk
        return b"data: " + _dumps(chunks[0]) + b"\n\n"
    return b"".join([b"data: " + _dumps(chunk) + b"\n\n" for chunk in chunks])


def encode_event(event: Mapping[str, Any]) -> bytes:
    """A Responses event as ``event: <type>\\ndata: <json>\\n\\n`` (passthrough of upstream events)."""
    kind = event.get("type")
    data = _dumps(event)
    if not isinstance(kind, str) or not kind or "\n" in kind or "\r" in kind:
        return b"data: " + data + b"\n\n"
    return b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"


def encode_events(events: Iterable[Mapping[str, Any]]) -> bytes:
    """Several Responses events joined."""
    return b"".join([encode_event(event) for event in events])
