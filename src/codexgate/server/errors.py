"""OpenAI's error envelope for every error the server produces.

Handlers turn :class:`~codexgate.protocol.errors.APIError`, Starlette's HTTP errors (404, 405 ...)
and FastAPI's validation errors into ``{"error": {"message", "type", "param", "code"}}`` with the
right status. Unexpected exceptions are caught by :mod:`codexgate.server.request_id`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from codexgate.protocol.errors import APIError

logger = logging.getLogger("codexgate.server")

_STATUS_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout_error",
}


def internal_error(request_id: str) -> APIError:
    """The 500 for an unexpected exception: the request id to report, never a traceback."""
    return APIError(
        500,
        f"The server had an error processing your request (request id {request_id}).",
        type="server_error",
        code="internal_error",
    )


def error_response(error: APIError) -> Response:
    return Response(
        orjson.dumps(error.envelope()),
        status_code=error.status_code,
        media_type="application/json",
        headers=error.headers,
    )


async def send_error(send: Send, error: APIError, *extra_headers: tuple[bytes, bytes]) -> None:
    """``error`` as a whole JSON response over raw ASGI, for the layers in front of FastAPI."""
    body = orjson.dumps(error.envelope())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(key.lower().encode("latin-1"), value.encode("latin-1")) for key, value in error.headers.items()]
    headers += extra_headers
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


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


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
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
    error = APIError(status, message, type=_STATUS_TYPES.get(status, "invalid_request_error"), code=code)
    error.headers.update(exc.headers or {})
    return error_response(error)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    param = loc_to_param(first.get("loc", ()))
    message = f"Invalid value for '{param}': {first.get('msg')}" if param else str(first.get("msg"))
    return error_response(APIError(400, message, param=param, code="invalid_value"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(APIError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
