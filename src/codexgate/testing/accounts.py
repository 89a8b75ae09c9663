"""Several ChatGPT accounts in the simulator: which account a request came from, and per-account limits.

The account is the ``chatgpt_account_id`` claim of the request's access token (a JWT), else its
``chatgpt-account-id`` header. Each account can have its own rate-limit figures (the ``x-codex-*``
headers of its answers) and a limit on how many more requests it serves: once spent, its requests get
the backend's ``usage_limit_reached`` 429 with ``resets_at`` until the reset time passes — or, for a limit
set ``in_stream``, a 200 stream that reports it before any output (``response.created``, an ``error`` event
``usage_limit_reached`` with ``resets_in_seconds``, then ``response.failed``).
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from codexgate.auth.jwt_claims import claims_of
from codexgate.testing.recorded import RateLimits
from codexgate.testing.sse_events import Event, EventStream, response_object

__all__ = ["AccountLimit", "AccountLimits", "AccountRefusal", "account_of", "in_stream_limit_events"]


def account_of(headers: Mapping[str, str]) -> str | None:
    """The account a request came from: its token's ``chatgpt_account_id`` claim, else the header."""
    scheme, _, token = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token.count(".") == 2:
        claimed = claims_of(token.strip()).account_id
        if claimed:
            return claimed
    header = headers.get("chatgpt-account-id", "").strip()
    return header or None


@dataclass
class AccountLimit:
    """How many more requests an account serves, and when its spent limit resets (unix time)."""

    remaining_requests: int
    resets_in: float
    resets_at: float | None = None  # set when the limit is spent
    in_stream: bool = False  # reported inside a 200 stream rather than as a 429

    def take(self, now: float) -> float | None:
        """Count one request; the reset time when the limit is spent (the request is refused), else None."""
        if self.resets_at is not None:
            if now < self.resets_at:
                return self.resets_at
            self.resets_at = None  # the window reset: the account serves again (no limit until set again)
            self.remaining_requests = 1 << 62
        if self.remaining_requests <= 0:
            self.resets_at = float(math.ceil(now + self.resets_in))  # the backend's resets_at is whole seconds
            return self.resets_at
        self.remaining_requests -= 1
        return None


class AccountLimits:
    """The per-account state of one simulator (safe to change from a test's thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limits: dict[str, AccountLimit] = {}
        self.rate_limits: dict[str, RateLimits] = {}

    def set_limit(self, account_id: str, remaining_requests: int, resets_in: float, *, in_stream: bool = False) -> None:
        with self._lock:
            self.limits[account_id] = AccountLimit(remaining_requests, resets_in, in_stream=in_stream)

    def clear_limit(self, account_id: str) -> None:
        with self._lock:
            self.limits.pop(account_id, None)

    def refusal(self, account: str | None, plan_type: str) -> AccountRefusal | None:
        """The refusal when ``account`` has spent its limit, else None (one request counted)."""
        if account is None:
            return None
        with self._lock:
            limit = self.limits.get(account)
            resets_at = limit.take(time.time()) if limit is not None else None
        if limit is None or resets_at is None:
            return None
        seconds = max(int(resets_at - time.time() + 0.999), 1)
        error = {
            "type": "usage_limit_reached",
            "message": "The usage limit has been reached",
            "plan_type": plan_type,
            "resets_at": int(resets_at),
            "resets_in_seconds": seconds,
        }
        return AccountRefusal(error, limit.in_stream)


@dataclass(frozen=True, slots=True)
class AccountRefusal:
    """A spent account's ``usage_limit_reached``: the backend's error object, and how it is reported."""

    error: dict[str, Any]
    in_stream: bool

    def body(self) -> bytes:
        """The 429's JSON body."""
        return orjson.dumps({"error": self.error})


def in_stream_limit_events(request: Mapping[str, Any], model: str, error: Mapping[str, Any]) -> Iterator[Event]:
    """A usage limit reported inside a 200 stream before any output: ``response.created``, an ``error``
    event (the code and ``resets_in_seconds``, no ``resets_at``), then ``response.failed``."""
    stream = EventStream(response_object(request, model=model))
    yield from itertools.islice(stream.start(), 1)
    code = str(error.get("type", "usage_limit_reached"))
    fields = {"type": code, "code": code, "message": error.get("message"), "param": None}
    yield stream.emit("error", error={**fields, "resets_in_seconds": error.get("resets_in_seconds")})
    yield from stream.finish("failed", usage=None, error={"code": code, "message": error.get("message")})
