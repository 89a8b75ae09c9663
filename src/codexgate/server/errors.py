"""Every error the server answers, in the envelope of the API the client called.

:func:`exception_response` is the one way from an exception to a response, for both ways into the
server (the direct endpoints and FastAPI's handlers): an :class:`~codexgate.errors.APIError` as it is,
a Starlette ``HTTPException`` with its own status (404 and 405 with OpenAI's messages and codes),
FastAPI's validation error as a 400 naming the parameter, and anything else as a 500 that names the
request id (logged once, with its traceback; never in the body). :func:`error_response` renders an
``APIError`` in a dialect:

* ``openai``: ``{"error": {"message", "type", "param", "code"}}`` (+ the error's extra fields);
* ``anthropic``: ``{"type": "error", "error": {"type", "message"}}`` with Anthropic's statuses, by the
  pure rules of :mod:`codexgate.protocol.anthropic_errors`: ``context_length_exceeded`` → 400 "prompt
  is too long…", a usage limit → 429 with ``retry-after`` (and ``x-should-retry: false`` for a reset
  more than a minute away), the backend overloaded or failing → 529 ``overloaded_error``, other 5xx →
  500 ``api_error``, not signed in → 401 telling to run ``codexgate login``. :data:`ANTHROPIC_TYPES`
  is the type by status those rules start from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import Scope

from codexgate.errors import APIError, type_for_status
from codexgate.protocol.anthropic_errors import anthropic_error
from codexgate.server.endpoints import DEFAULT_DIALECT, Dialect
from codexgate.server.request_id import request_id_of

__all__ = [
    "ANTHROPIC_TYPES",
    "anthropic_type",
    "envelope",
    "error_for",
    "error_response",
    "exception_response",
    "header_pairs",
    "internal_error",
    "loc_to_param",
    "log_unexpected",
]

logger = logging.getLogger("codexgate.server")

#: Anthropic's error ``type`` by status; other 4xx are ``invalid_request_error``, other 5xx ``api_error``.
ANTHROPIC_TYPES: Final[dict[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}


def anthropic_type(status: int) -> str:
    known = ANTHROPIC_TYPES.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


def envelope(error: APIError, dialect: Dialect = DEFAULT_DIALECT) -> dict[str, Any]:
    """The JSON body of ``error`` in ``dialect``."""
    if dialect == "anthropic":
        return anthropic_error(error)[1]
    return error.envelope()


def internal_error(request_id: str) -> APIError:
    """The 500 for an unexpected exception: the request id to report, never a traceback."""
    return APIError(
        500,
        f"The server had an error processing your request (request id {request_id}).",
        type="server_error",
        code="internal_error",
    )


def header_pairs(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """``headers`` as raw ASGI pairs; a name or value that cannot be sent as it is (not Latin-1, or
    holding a control character) is left out instead of failing the answer it belongs to."""
    pairs = []
    for key, value in headers.items():
        try:
            name, raw = key.lower().encode("latin-1"), value.encode("latin-1")
        except UnicodeEncodeError:
            continue
        if value.isprintable() and key.isprintable():
            pairs.append((name, raw))
    return pairs


def error_response(error: APIError, dialect: Dialect = DEFAULT_DIALECT) -> Response:
    if dialect == "anthropic":
        status, document, extra_headers = anthropic_error(error)
        response = Response(orjson.dumps(document), status_code=status, media_type="application/json")
        response.raw_headers += header_pairs({**error.headers, **extra_headers})
        return response
    body = orjson.dumps(envelope(error, dialect))
    response = Response(body, status_code=error.status_code, media_type="application/json")
    response.raw_headers += header_pairs(error.headers)
    return response


def loc_to_param(loc: Sequence[Any]) -> str | None:
    """``("body", "messages", 2, "content")`` -> ``"messages[2].content"``."""
    param = ""
    for part in loc:
        if part in ("body", "query", "path", "header") and not param:
            continue
        if isinstance(part, int):
            param += f"[{part}]"
        else:
            param += f".{part}" if param else str(part)
    return param or None


def _http_error(exc: HTTPException) -> APIError:
    status = exc.status_code
    if status == 404:
        message = "Unknown request URL. Please check the URL for typos."
        code: str | None = "unknown_url"
    elif status == 405:
        message = "Method not allowed for this URL."
        code = "method_not_allowed"
    else:
        message = str(exc.detail)
        code = None
    return APIError(status, message, type=type_for_status(status), code=code, headers=exc.headers)


def _validation_error(exc: RequestValidationError) -> APIError:
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    param = loc_to_param(first.get("loc", ()))
    message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
    return APIError(400, message, param=param, code="invalid_value")


def error_for(exc: BaseException) -> APIError | None:
    """The error a known exception stands for; None for an unexpected one."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    return None


def log_unexpected(exc: BaseException, scope: Scope) -> None:
    """The one log line (with the traceback, redacted like every line) for an unexpected error."""
    logger.error(
        "unhandled %s in %s %s (request %s)",
        type(exc).__name__,
        scope.get("method"),
        scope.get("path"),
        request_id_of(scope),
        exc_info=exc,
    )


def exception_response(exc: BaseException, scope: Scope, dialect: Dialect) -> Response:
    """The response for ``exc`` raised while answering ``scope``; an unexpected one is logged here."""
    error = error_for(exc)
    if error is None:
        log_unexpected(exc, scope)
        error = internal_error(request_id_of(scope))
    return error_response(error, dialect)
