"""A request's outcome in plain words, from its status and error code (the request log's last column)."""

from __future__ import annotations

from typing import Final

__all__ = ["reason"]

_BY_CODE: Final[dict[str, str]] = {
    "budget_exceeded": "The key is over its budget",
    "model_not_allowed": "The key may not use this model",
    "key_expired": "The key has expired",
    "invalid_api_key": "Unknown or revoked API key",
    "rate_limit_exceeded": "Rate limited",
    "usage_limit_reached": "Every account reached its usage limit",
    "usage_not_included": "The plan does not include this model",
    "too_many_concurrent_streams": "Too many streams open at once",
    "client_disconnected": "The client went away before the end",
    "cancelled": "The request was cancelled",
    "upstream_timeout": "The backend did not answer in time",
    "upstream_unreachable": "The backend could not be reached",
    "upstream_disconnected": "The backend closed the stream early",
    "upstream_error": "The backend answered with an error",
    "not_logged_in": "No account is logged in",
    "invalid_credentials": "An account's sign-in is no longer valid",
    "model_not_found": "Unknown model",
    "models_unavailable": "The model list could not be fetched",
    "request_too_large": "The request body is too large",
    "invalid_json": "The request body is not valid JSON",
    "invalid_value": "A request field has an invalid value",
    "missing_required_parameter": "A required request field is missing",
    "server_shutting_down": "The gateway was shutting down",
    "internal_error": "An internal error in the gateway",
}

_BY_STATUS: Final[dict[int, str]] = {
    400: "The request was invalid",
    401: "Not authorised",
    403: "Not allowed",
    404: "Not found",
    408: "The request timed out",
    413: "The request is too large",
    429: "Rate limited",
    499: "The client went away",
    500: "An internal error",
    502: "The backend failed",
    503: "The gateway is unavailable",
    504: "The backend timed out",
}


def reason(status: int, error_code: str | None) -> str:
    """Plain words for a request's outcome; empty for a success."""
    if error_code and error_code in _BY_CODE:
        return _BY_CODE[error_code]
    if status < 400 and not error_code:
        return ""
    words = _BY_STATUS.get(status) or ("A server error" if status >= 500 else "The request failed")
    return f"{words} ({error_code})" if error_code else words
