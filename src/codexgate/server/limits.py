"""The cap on concurrent upstream streams (setting ``max_concurrent_streams``, 0 = no cap)."""

from __future__ import annotations

from codexgate.protocol.errors import APIError


class StreamLimiter:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.active = 0

    def acquire(self) -> None:
        """Take a slot or raise 429 with ``Retry-After`` (never queue: no pile-up)."""
        if self.cap and self.active >= self.cap:
            raise APIError(
                429,
                f"Too many concurrent streams ({self.cap}, setting max_concurrent_streams); retry shortly.",
                type="rate_limit_error",
                code="too_many_concurrent_streams",
                headers={"retry-after": "1"},
            )
        self.active += 1

    def release(self) -> None:
        self.active = max(0, self.active - 1)
