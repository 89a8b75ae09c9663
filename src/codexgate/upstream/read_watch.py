"""The upstream read timeout: a stream that waits ``read_timeout`` seconds for bytes fails.

aiohttp's own ``sock_read`` timeout cancels and re-arms a timer on every socket read — about a
microsecond and a half per upstream event, a twentieth of the gateway's whole cost per event when
streams are paced. Here the reader stamps when it starts to wait (:attr:`ReadWatch.waiting_since`)
and clears the stamp when bytes arrive, and one timer per stream looks at the stamp a few times per
timeout. Only time spent *waiting for the upstream* counts: while the consumer is held up by its
own slow client, the stamp is clear and nothing expires.

When the wait has lasted ``timeout`` seconds the stream's reader gets a :class:`TimeoutError`, so
the pending (or next) read raises it — the same exception ``sock_read`` raised.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

CHECKS_PER_TIMEOUT = 4  # a stalled read fails between 1 and 1.25 timeouts after it began


class FailableReader(Protocol):
    def set_exception(self, exc: BaseException) -> None: ...
    def exception(self) -> BaseException | None: ...
    def at_eof(self) -> bool: ...


class ReadWatch:
    """Fails ``reader`` once a read has waited ``timeout`` seconds. :meth:`start`, then :meth:`stop`."""

    __slots__ = ("_timer", "expired", "reader", "timeout", "waiting_since")

    def __init__(self, reader: FailableReader, timeout: float) -> None:
        self.reader = reader
        self.timeout = timeout
        #: ``time.monotonic()`` when the current wait for upstream bytes began; 0.0 when not waiting.
        self.waiting_since = 0.0
        self.expired = False
        self._timer: asyncio.TimerHandle | None = None

    def start(self) -> None:
        self._schedule()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _schedule(self) -> None:
        self._timer = asyncio.get_running_loop().call_later(self.timeout / CHECKS_PER_TIMEOUT, self._check)

    def _check(self) -> None:
        if self.reader.at_eof() or self.reader.exception() is not None:
            self._timer = None  # the stream ended (or was dropped without stop()): nothing to watch
            return
        since = self.waiting_since
        if since and time.monotonic() - since >= self.timeout:
            self.expired = True
            self._timer = None
            self.reader.set_exception(TimeoutError(f"no upstream bytes for {self.timeout:g} s"))
            return
        self._schedule()
