"""The one error type that crosses every layer, and the one table from HTTP status to error type.

Pure data: no I/O. The server turns an :class:`APIError` into an HTTP response in the envelope of
the API the client called (or an in-stream error once a stream has started); the upstream client and
the request mappers raise it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = ["STATUS_TYPES", "APIError", "invalid_request", "type_for_status"]

#: OpenAI's error ``type`` for each status the gateway answers with. A 503 is ``server_error`` as
#: OpenAI's own API answers it; ``server_overloaded`` is kept only where the backend said so.
STATUS_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    431: "invalid_request_error",
    499: "client_disconnected",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout_error",
}


def type_for_status(status: int) -> str:
    """The error ``type`` for ``status`` (``invalid_request_error`` for other 4xx, ``server_error`` for 5xx)."""
    known = STATUS_TYPES.get(status)
    if known is not None:
        return known
    return "server_error" if status >= 500 else "invalid_request_error"


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
