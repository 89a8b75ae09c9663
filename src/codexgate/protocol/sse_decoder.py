"""Incremental Server-Sent Events decoder: upstream bytes in, parsed JSON events out.

The decoder keeps a receive buffer and accepts bytes in pieces of any size: a line, a UTF-8
character or a ``\\r\\n`` pair may be split between two calls to :meth:`SSEDecoder.feed`. Work is
done with ``bytes`` operations (``find``/``split``/``replace``) on whole events, never per byte, and
each event's ``data`` is parsed with orjson.

Rules (the WHATWG event-stream format, reduced to what a JSON event stream needs):

* lines end with ``\\n``, ``\\r\\n`` or ``\\r``; a blank line ends an event;
* ``data:`` lines are joined with ``\\n`` (multi-line data); one space after the colon is dropped;
* ``event:`` names the event; it may come before or after ``data:``; the JSON's own ``type`` wins,
  the ``event:`` name is used only when the JSON has no string ``type``;
* lines starting with ``:`` (comments, keep-alives), ``id:``, ``retry:`` and unknown fields are
  ignored; so are events without data, events whose data is blank, and ``data: [DONE]``;
* data that is not a JSON object yields ``{"type": "codexgate.protocol_error", "message": ...}``;
* one event larger than ``max_event_size`` bytes (16 MiB unless told; its lines with their line ends,
  after ``\\r\\n`` → ``\\n``, without the blank line) yields that protocol error too and ends
  decoding: everything fed afterwards is dropped unread (:attr:`SSEDecoder.failed`).

Memory and time stay linear in the input: an unfinished event that spans reads is collected in a
``bytearray`` (amortized appends) and joined once, when its blank line arrives; only the new bytes
of each read are searched for that blank line. So a huge line without a newline costs one pass, not
one copy of the whole buffer per read, and it is refused once it passes the limit.

Nothing in here raises on any input.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

PROTOCOL_ERROR: Final = "codexgate.protocol_error"
DEFAULT_MAX_EVENT_SIZE: Final = 16 * 1024 * 1024
_DONE: Final = b"[DONE]"
_loads = orjson.loads


def protocol_error(message: str) -> dict[str, Any]:
    """The event the decoder yields for data it cannot parse."""
    return {"type": PROTOCOL_ERROR, "message": message}


def _snippet(data: bytes, limit: int = 200) -> str:
    text = data[:limit].decode("utf-8", "replace")
    return text + ("..." if len(data) > limit else "")


def _parse_data(data: bytes, name: bytes | None) -> dict[str, Any] | None:
    """Turn one event's data into a dict (or ``None`` to skip it)."""
    if not data.strip() or data == _DONE:
        return None
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        return protocol_error(f"Upstream sent an event whose data is not JSON ({exc}): {_snippet(data)}")
    if not isinstance(value, dict):
        return protocol_error(f"Upstream sent an event whose data is not a JSON object: {_snippet(data)}")
    if name is not None and not isinstance(value.get("type"), str):
        value["type"] = name.decode("utf-8", "replace")
    return value


def _parse_block(block: bytes) -> dict[str, Any] | None:
    """Parse one event (the lines between two blank lines, ``\\n``-separated)."""
    # Fast path: a single ``data: {...}`` line.
    if block.startswith(b"data: ") and block.find(b"\n") < 0:
        return _parse_data(block[6:], None)
    name: bytes | None = None
    data_lines: list[bytes] = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data_lines.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            value = line[6:]
            name = (value[1:] if value.startswith(b" ") else value).strip() or None
    if not data_lines:
        return None
    return _parse_data(data_lines[0] if len(data_lines) == 1 else b"\n".join(data_lines), name)


def _too_large(limit: int) -> dict[str, Any]:
    return protocol_error(f"Upstream sent an SSE event larger than the limit of {limit} bytes.")


class SSEDecoder:
    """Feed bytes, get back the JSON events they complete."""

    __slots__ = ("_buffer", "_failed", "_max_event_size", "_pending_cr")

    def __init__(self, max_event_size: int = DEFAULT_MAX_EVENT_SIZE) -> None:
        if max_event_size < 1:
            raise ValueError("max_event_size must be positive")
        self._max_event_size = max_event_size
        # The unfinished event, normalized to ``\n`` line ends: ``bytes`` while it came in one read,
        # a ``bytearray`` (appended to in place) once it spans reads without its blank line.
        self._buffer: bytes | bytearray = b""
        self._pending_cr = False  # the last byte seen was ``\r``: a following ``\n`` is part of it
        self._failed = False

    @property
    def failed(self) -> bool:
        """An event was over the size limit: decoding has ended, input is dropped from now on."""
        return self._failed

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Add ``data``; return the events completed by it (possibly none). Never raises."""
        if self._failed:
            return []
        try:
            return self._feed(data if type(data) is bytes else bytes(data))
        except Exception as exc:  # defensive: the decoder must never take the stream down
            self._buffer = b""
            self._pending_cr = False
            return [protocol_error(f"SSE decoder failure: {type(exc).__name__}: {exc}")]

    def close(self) -> list[dict[str, Any]]:
        """End of stream: flush an event that was not followed by a blank line."""
        block = bytes(self._buffer)
        self._buffer = b""
        self._pending_cr = False
        if self._failed:
            return []
        try:
            events: list[dict[str, Any]] = []
            for part in block.split(b"\n\n"):
                event = _parse_block(part.strip(b"\n"))
                if event is not None:
                    events.append(event)
            return events
        except Exception as exc:  # defensive, see feed()
            return [protocol_error(f"SSE decoder failure: {type(exc).__name__}: {exc}")]

    def _fail(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Over the limit: the events before the big one, then the error; nothing after that."""
        self._failed = True
        self._buffer = b""
        self._pending_cr = False
        events.append(_too_large(self._max_event_size))
        return events

    def _feed(self, data: bytes) -> list[dict[str, Any]]:
        if not data:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if data[:1] == b"\n":
                data = data[1:]
        if data.find(b"\r") >= 0:  # ``find``: ``in`` on bytes first tries the needle as an int
            if data.endswith(b"\r"):
                self._pending_cr = True
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        old = self._buffer
        # Only the new bytes (and the one before them) can complete a ``\n\n`` boundary.
        if data.find(b"\n\n") < 0 and not (data[:1] == b"\n" and old[-1:] == b"\n"):
            if type(old) is bytearray:
                old += data  # in place: amortized, no copy of what is already there
            else:
                old = bytearray(old)
                old += data
                self._buffer = old
            if len(old) > self._max_event_size:
                return self._fail([])
            return []
        if type(old) is bytes:
            buffer = old + data if old else data
        else:
            old += data
            buffer = bytes(old)  # the one copy of an event that spanned reads
        end = buffer.rfind(b"\n\n")
        self._buffer = tail = buffer[end + 2 :]
        limit = self._max_event_size
        if len(tail) > limit:
            return self._fail(self._decode(buffer[:end], limit))
        return self._decode(buffer[:end], limit if end >= limit else 0)

    def _decode(self, complete: bytes, limit: int) -> list[dict[str, Any]]:
        """The events of ``complete`` (whole events); ``limit``: check each one's size (0: no need)."""
        events: list[dict[str, Any]] = []
        append = events.append
        for block in complete.split(b"\n\n"):
            if limit and len(block) >= limit:  # its size counts the end of its last line
                return self._fail(events)
            # Fast path for the shape servers send: one ``data: {...}`` line, alone or after exactly
            # one ``event:`` line (whose name the JSON's own ``type`` overrides anyway).
            head, found, data = block.partition(b"data: ")
            if (
                found
                and (not head or (head[:6] == b"event:" and head.find(b"\n") == len(head) - 1))
                and data.find(b"\n") < 0
            ):
                try:
                    value = _loads(data)
                except orjson.JSONDecodeError:
                    value = None
                if type(value) is dict and type(value.get("type")) is str:
                    append(value)
                    continue
            if block:  # anything else: the general rules (and their error events)
                if block[0] == 10:  # leftover ``\n`` from a run of blank lines
                    block = block.lstrip(b"\n")
                event = _parse_block(block)
                if event is not None:
                    append(event)
        return events
