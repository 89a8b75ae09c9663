"""Limits: concurrent upstream streams (``max_concurrent_streams``, 0 = no cap) and request head size."""

from __future__ import annotations

from starlette.types import Scope

from codexgate.errors import APIError


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


def head_too_large(scope: Scope, max_header_size: int) -> APIError | None:
    """The 431 for a request whose path and headers together exceed ``max_header_size`` bytes."""
    size = len(scope.get("raw_path") or b"") + sum(len(k) + len(v) + 4 for k, v in scope["headers"])
    if size <= max_header_size:
        return None
    return APIError(
        431,
        f"Request headers are larger than {max_header_size} bytes (setting max_header_size).",
        type="invalid_request_error",
        code="request_header_fields_too_large",
    )
