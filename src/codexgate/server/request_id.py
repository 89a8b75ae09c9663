"""Pure-ASGI middleware: a request id on every response, and a 500 envelope for the unexpected.

The id is ``req_`` + 24 hex digits, put in ``scope["state"]["request_id"]`` for handlers and logs,
and sent back as ``x-request-id``. An exception that escapes the app before the response started
becomes a 500 in OpenAI's envelope naming the request id, never a traceback in the body.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from codexgate.server.errors import internal_error, send_error

logger = logging.getLogger("codexgate.server")


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def request_id_of(scope: Scope) -> str:
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if not isinstance(request_id, str):
        request_id = new_request_id()
        state["request_id"] = request_id
    return request_id


def log_unexpected(exc: Exception, scope: Scope, request_id: str) -> None:
    """The one log line (with the traceback, redacted like every line) for an unexpected error."""
    logger.error(
        "unhandled %s in %s %s (request %s)",
        type(exc).__name__,
        scope.get("method"),
        scope.get("path"),
        request_id,
        exc_info=exc,
    )


class RequestIdMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            log_unexpected(exc, scope, request_id)
            if started:
                return
            await send_error(send, internal_error(request_id), header)
