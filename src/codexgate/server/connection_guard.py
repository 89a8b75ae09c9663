"""Connection limits in front of the HTTP parser: head size and time, body rate, open connections.

uvicorn's httptools protocol buffers a request head without bound until it is complete, never times
out a connection that has not finished its head, and accepts any number of connections. The protocol
class here (built by :func:`guarded_protocol` and given to ``uvicorn.Config(http=...)``) adds, per
connection:

- the bytes of a head are counted as they arrive, and the parser is never fed more than
  ``max_header_size`` of them: past that, 431 in OpenAI's error envelope and close;
- a head must be complete within ``head_timeout`` seconds of the connection's start (or, on a
  keep-alive connection, of the first byte of the next head; the idle time before it stays under
  uvicorn's keep-alive timeout): otherwise close, with a 408 first if the head had begun;
- after the first ``body_grace`` seconds, a body must have arrived at ``body_min_rate`` bytes/s on
  average, or 408 and close;
- over ``max_connections`` open connections (idle keep-alive ones included), a new connection is
  answered 503 with ``retry-after: 1`` and closed at once.

After an early answer (431, 408) the rest of what the client sends is read and dropped for a moment
(not buffered), so that the answer reaches a client that is still sending instead of a reset.

Cost on an established connection whose head is complete: one branch and one addition per read.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from codexgate.errors import APIError

__all__ = [
    "DEFAULT_MAX_HEADER_SIZE",
    "ConnectionLimits",
    "GuardedHttpToolsProtocol",
    "default_max_connections",
    "guarded_protocol",
    "raise_fd_limit",
]

logger = logging.getLogger("codexgate.server")

#: the default of the ``limits.max_header_size`` setting (config.py), for limits built without settings
DEFAULT_MAX_HEADER_SIZE = 64 * 1024
#: how long, and how many bytes, a connection answered early is read (and dropped) before it is closed
LINGER_SECONDS = 1.0
LINGER_BYTES = 4 * 1024 * 1024
#: the body rate is checked at most this often once its grace is over
BODY_CHECK_INTERVAL = 0.5


def default_max_connections() -> int:
    """Below the fd soft limit: each open stream holds two descriptors (client and upstream) and the
    process needs some of its own; never more than 1024."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(16, min(1024, (soft - 64) // 2))


@dataclass(frozen=True)
class ConnectionLimits:
    """The limits every connection of one server is held to (sizes in bytes, times in seconds)."""

    max_header_size: int = DEFAULT_MAX_HEADER_SIZE
    head_timeout: float = 10.0
    body_min_rate: float = 64 * 1024
    body_grace: float = 10.0
    max_connections: int = field(default_factory=default_max_connections)


def raise_fd_limit() -> int:
    """Raise the soft RLIMIT_NOFILE towards the hard limit where allowed; the soft limit in force after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 1024 * 1024
    if soft != resource.RLIM_INFINITY and soft < wanted:
        # the smaller ones for systems that refuse the hard limit itself (macOS: kern.maxfilesperproc)
        for target in sorted({wanted, min(wanted, 65536), min(wanted, 10240)}, reverse=True):
            if target <= soft:
                break
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            except (ValueError, OSError):
                continue
            logger.debug("open-file limit raised from %d to %d (hard limit %s)", soft, target, hard)
            return target
        logger.debug("open-file limit left at %d (hard limit %s): raising it was refused", soft, hard)
    else:
        logger.debug("open-file limit is %s (hard limit %s)", soft, hard)
    return soft


def _answer(error: APIError, *, close: bool = True) -> bytes:
    """A whole HTTP/1.1 response carrying ``error`` in OpenAI's envelope."""
    body = orjson.dumps(error.envelope())
    lines = [STATUS_LINE[error.status_code], b"content-type: application/json\r\n"]
    lines += [
        name.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n" for name, value in error.headers.items()
    ]
    lines += [b"content-length: ", str(len(body)).encode(), b"\r\n"]
    if close:
        lines.append(b"connection: close\r\n")
    lines += [b"\r\n", body]
    return b"".join(lines)


_parse = HttpToolsProtocol.data_received


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the limits of :class:`ConnectionLimits` (see the module doc)."""

    limits: ClassVar[ConnectionLimits] = ConnectionLimits()
    _refusal_logged_at: ClassVar[float] = float("-inf")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True  # from the connection's start, and again after each whole request
        self._head_begun = False  # the parser saw the first byte of the current head
        self._head_bytes = 0  # bytes fed to the parser while the current head was incomplete
        self._heads_completed = 0
        self._feeding_head = False  # inside the head path's parser feed (parser callbacks ask)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_bytes = 0  # bytes read since the head completed
        self._body_start = 0.0
        self._body_timer: asyncio.TimerHandle | None = None
        self._discarding = False  # answered early: what arrives is dropped until the close
        self._discarded = 0
        self._linger_timer: asyncio.TimerHandle | None = None

    # Connection events

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        over_cap = len(self.connections) >= self.limits.max_connections
        super().connection_made(transport)
        if over_cap:
            now = self.loop.time()
            if now - GuardedHttpToolsProtocol._refusal_logged_at > 10:  # one line per 10 s, not one per refusal
                GuardedHttpToolsProtocol._refusal_logged_at = now
                logger.warning("connections refused: %d open (setting max_connections)", len(self.connections) - 1)
            error = APIError(
                503,
                f"Too many open connections ({self.limits.max_connections}, setting max_connections); retry shortly.",
                type="server_error",
                code="too_many_connections",
                headers={"retry-after": "1"},
            )
            self._awaiting_head = self._discarding = True
            transport.write(_answer(error))
            transport.close()
            return
        self._start_head_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._receive_head(data)
            return
        self._body_bytes += len(data)
        _parse(self, data)  # uvicorn's own data_received (called directly: cheaper than super() per read)

    # Parser callbacks (called from inside the parser's feed)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        if not self._feeding_head and self._head_timer is None:  # a pipelined head began after a body
            self._start_head_clock()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._heads_completed += 1
        self._body_bytes = 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()
        if not self._feeding_head and self._body_timer is None:  # (pipelined) the body's clock starts
            self._start_body_clock()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._awaiting_head = True
        self._head_begun = False
        self._head_bytes = 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    # The head

    def _receive_head(self, data: bytes) -> None:
        if self._discarding:
            self._discard(len(data))
            return
        room = self.limits.max_header_size - self._head_bytes
        if len(data) > room:  # the parser gets no more of this head than the limit
            completed = self._heads_completed
            self._feed_head(data[:room])
            if self.transport.is_closing() or self._discarding:
                return
            if self._heads_completed == completed:
                self._reject(
                    APIError(
                        431,
                        f"Request headers are larger than {self.limits.max_header_size} bytes "
                        "(setting max_header_size).",
                        code="request_header_fields_too_large",
                    )
                )
                self._discard(len(data) - room)
                return
            self.data_received(data[room:])
            return
        self._feed_head(data)

    def _feed_head(self, data: bytes) -> None:
        completed = self._heads_completed
        self._feeding_head = True
        try:
            super().data_received(data)
        finally:
            self._feeding_head = False
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # a parse error answered 400, or a WebSocket took the connection over
        if self._awaiting_head:
            # A head that completed in this read and was followed by the start of another leaves the
            # new head's bytes in this read uncounted: at most one read more than the limit.
            self._head_bytes = self._head_bytes + len(data) if self._heads_completed == completed else 0
            if self._head_timer is None and (self._head_bytes or self._head_begun):
                self._start_head_clock()  # keep-alive: the next head's clock starts with its first byte
        elif self._body_timer is None:  # a head completed, its body has not: the body's clock starts
            self._start_body_clock()

    def _start_head_clock(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)

    def _start_body_clock(self) -> None:
        self._body_start = self.loop.time()
        self._body_timer = self.loop.call_later(self.limits.body_grace, self._check_body_rate)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not self._awaiting_head:
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # Bytes of a next request arrived while this response is being sent: not the time to
            # answer; the next head gets its time after this response.
            self._head_timer = self.loop.call_later(self.limits.head_timeout, self._head_timed_out)
            return
        if not self._head_begun:
            self.transport.close()
            return
        self._reject(
            APIError(
                408,
                f"The request head did not arrive within {self.limits.head_timeout:g} s (setting head_timeout).",
                type="timeout_error",
                code="request_timeout",
            )
        )

    # The body

    def _check_body_rate(self) -> None:
        self._body_timer = None
        if self._awaiting_head or self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # the body is complete, the connection closing, or a WebSocket took it over
        now = self.loop.time()
        if self.flow.read_paused:  # our own back-pressure (the app has not read yet): not the client's fault
            self._body_start, self._body_bytes = now, 0
            self._body_timer = self.loop.call_later(self.limits.body_grace, self._check_body_rate)
            return
        if self._body_bytes < (now - self._body_start) * self.limits.body_min_rate:
            if self.cycle.response_started:  # answered already (without the body): only the close is left
                self.transport.close()
                return
            logger.info("request body arriving below %g bytes/s: connection closed", self.limits.body_min_rate)
            self._reject(
                APIError(
                    408,
                    f"The request body arrived slower than {self.limits.body_min_rate:g} bytes/s "
                    "(setting body_min_rate).",
                    type="timeout_error",
                    code="request_timeout",
                )
            )
            return
        # The average stays above the minimum until the bytes so far are all that has arrived at
        # ``start + bytes / rate``: check again then (but not more often than the interval).
        due = self._body_start + self._body_bytes / self.limits.body_min_rate
        self._body_timer = self.loop.call_later(max(due - now, BODY_CHECK_INTERVAL), self._check_body_rate)

    # Early answers

    def _reject(self, error: APIError) -> None:
        """Answer ``error`` and close; until the close (a moment later), drop what arrives."""
        self._cancel_timers()
        self._awaiting_head = self._discarding = True
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            cycle.disconnected = True  # the app, if it waits for the body, sees a disconnect
            cycle.message_event.set()
            if cycle.response_started:  # an answer is under way: nothing can be said, only closed
                self.transport.close()
                return
        self.transport.write(_answer(error))
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self._linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)

    def _discard(self, size: int) -> None:
        self._discarded += size
        if self._discarded > LINGER_BYTES and not self.transport.is_closing():
            self.transport.abort()

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer, self._linger_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = self._linger_timer = None


def guarded_protocol(limits: ConnectionLimits) -> type[GuardedHttpToolsProtocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` that holds connections to ``limits``."""
    return type("GuardedHttpToolsProtocol", (GuardedHttpToolsProtocol,), {"limits": limits})
