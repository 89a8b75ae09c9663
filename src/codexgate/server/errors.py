"""OpenAI's error envelope for every error the server produces.

Handlers turn :class:`~codexgate.errors.APIError`, Starlette's HTTP errors (404, 405 ...)
and FastAPI's validation errors into ``{"error": {"message", "type", "param", "code"}}`` with the
right status. Unexpected exceptions are caught by :mod:`codexgate.server.request_id`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import Send

from codexgate.errors import APIError, type_for_status

logger = logging.getLogger("codexgate.server")


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


def error_response(error: APIError) -> Response:
    response = Response(orjson.dumps(error.envelope()), status_code=error.status_code, media_type="application/json")
    response.raw_headers += header_pairs(error.headers)
    return response


async def send_error(send: Send, error: APIError, *extra_headers: tuple[bytes, bytes]) -> None:
    """``error`` as a whole JSON response over raw ASGI, for the layers in front of FastAPI."""
    body = orjson.dumps(error.envelope())
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += header_pairs(error.headers)
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
    error = APIError(status, message, type=type_for_status(status), code=code)
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
