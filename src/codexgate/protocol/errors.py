"""The one error type that crosses every layer, rendered as OpenAI's error envelope.

Pure data: no I/O. The server turns an :class:`APIError` into an HTTP response (or an in-stream
``data: {"error": ...}`` payload once a stream has started); the upstream client and the request
mapper raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class APIError(Exception):
    """An error with an HTTP status and OpenAI's envelope fields."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers: dict[str, str] = dict(headers or {})
        #: fields after the four standard ones (a usage limit's ``plan_type``, ``resets_at`` …)
        self.extra: dict[str, Any] = dict(extra or {})

    def to_dict(self) -> dict[str, Any]:
        """The inner object of the envelope: ``{"message", "type", "param", "code"}`` (+ :attr:`extra`)."""
        inner = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        if self.extra:
            inner.update((key, value) for key, value in self.extra.items() if key not in inner)
        return inner

    def envelope(self) -> dict[str, Any]:
        """OpenAI's error envelope: ``{"error": {...}}``."""
        return {"error": self.to_dict()}

    def __repr__(self) -> str:
        return f"APIError({self.status_code}, {self.message!r}, type={self.type!r}, code={self.code!r})"


def invalid_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """A 400 ``invalid_request_error``."""
    return APIError(400, message, type="invalid_request_error", param=param, code=code)
