"""An :class:`APIError` in Anthropic's envelope and statuses (pure).

``{"type": "error", "error": {"type": ..., "message": ...}}``; the rules (issue 13, "Errors"):

* ``context_length_exceeded`` → 400 ``invalid_request_error`` whose message starts
  "prompt is too long" (what Claude Code reads to compact the conversation);
* not signed in (``not_logged_in``) → 401 ``authentication_error`` telling to run ``codexgate login``;
* a ChatGPT usage limit (``usage_limit_reached`` / ``usage_not_included``) → 429 ``rate_limit_error``
  with ``retry-after`` and the reset time in the message, and ``x-should-retry: false`` when the reset
  is more than a minute away (the client should not sit retrying);
* the backend overloaded or failing (``server_is_overloaded``, ``slow_down``, its 5xx answers and
  in-stream ``server_error``) → 529 ``overloaded_error``; the backend unreachable, timeouts, a broken or
  malformed stream and our own failures → 500 ``api_error``;
* other statuses by kind: 400 (and other 4xx) ``invalid_request_error``, 401 ``authentication_error``,
  403 ``permission_error``, 404 ``not_found_error``, 413 ``request_too_large``, 429 ``rate_limit_error``.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from codexgate.errors import APIError

__all__ = ["anthropic_error", "error_event", "error_payload"]

_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
_USAGE_LIMIT_CODES = ("usage_limit_reached", "usage_not_included")
#: upstream failures that mean "the backend is busy or failing": Anthropic's 529, which clients retry
_OVERLOADED_CODES = ("server_is_overloaded", "slow_down", "upstream_error", "server_error")
_PASSED_HEADERS = ("retry-after", "www-authenticate")
_PROMPT_TOO_LONG = "prompt is too long"
_LOGIN_HINT = "Run `codexgate login` to sign in."
_SHOULD_NOT_RETRY_AFTER = 60


def _status_and_type(error: APIError) -> tuple[int, str]:
    code = error.code or ""
    status = error.status_code
    if code == "context_length_exceeded":
        return 400, "invalid_request_error"
    if code in _USAGE_LIMIT_CODES or error.type in _USAGE_LIMIT_CODES:
        return 429, "rate_limit_error"
    if code in _OVERLOADED_CODES or error.type == "server_overloaded" or status in (503, 529):
        return 529, "overloaded_error"
    if status >= 500:
        return 500, "api_error"
    if status in _TYPES:
        return status, _TYPES[status]
    return status, "invalid_request_error"


def _message(error: APIError, kind: str) -> str:
    message = error.message or "The request failed."
    if error.code == "context_length_exceeded" and not message.lower().startswith(_PROMPT_TOO_LONG):
        return f"{_PROMPT_TOO_LONG}: {message}"
    if error.code == "not_logged_in" and "codexgate login" not in message:
        return f"{message} {_LOGIN_HINT}"
    if kind == "rate_limit_error" and "reset" not in message:
        resets_at = error.extra.get("resets_at")
        if isinstance(resets_at, int):
            return f"{message} The limit resets at {resets_at} (Unix time)."
    return message


def error_payload(error: APIError) -> dict[str, Any]:
    """``{"type": "error", "error": {"type", "message"}}`` for ``error`` (also the in-stream form)."""
    kind = _status_and_type(error)[1]
    return {"type": "error", "error": {"type": kind, "message": _message(error, kind)}}


def anthropic_error(error: APIError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) of the HTTP answer for ``error``."""
    status, kind = _status_and_type(error)
    headers = {name: value for name, value in error.headers.items() if name.lower() in _PASSED_HEADERS}
    if kind == "rate_limit_error":
        seconds = error.extra.get("resets_in_seconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool):
            if not any(name.lower() == "retry-after" for name in headers):
                headers["retry-after"] = str(max(int(seconds), 1))
            if seconds > _SHOULD_NOT_RETRY_AFTER:
                headers["x-should-retry"] = "false"
    body = {"type": "error", "error": {"type": kind, "message": _message(error, kind)}}
    return status, body, headers


def error_event(error: APIError) -> bytes:
    """The ``event: error`` SSE frame for a failure after the stream started."""
    return b"event: error\ndata: " + orjson.dumps(error_payload(error)) + b"\n\n"
