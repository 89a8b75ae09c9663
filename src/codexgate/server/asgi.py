"""The ASGI application uvicorn serves: one thin layer in front of the FastAPI app.

Every HTTP request gets its request id (``scope["state"]["request_id"]``, sent back as
``x-request-id``) and the head-size check here. The **direct** endpoints (the answer endpoints, see
:mod:`codexgate.server.endpoints`) are then called directly, after the API-key check: past
FastAPI's routing, dependency and middleware layers, which every upstream event of a stream would
otherwise climb through on its way to the socket (and which every open stream would keep in memory).
Everything else — models, health, metrics, the OpenAPI document, 404/405, and any request with an
``Origin`` header while CORS is configured — goes to the FastAPI app. Both ways share the route table
(built from the FastAPI router), the one :class:`~codexgate.server.access.KeyCheck` and the one
exception-to-response function (:func:`~codexgate.server.errors.exception_response`), so they answer
alike. Every answer also carries ``request-id`` (Anthropic's name) with the same value.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from codexgate.server.access import KeyCheck
from codexgate.server.endpoints import RouteTable
from codexgate.server.errors import error_response, exception_response, internal_error, log_unexpected
from codexgate.server.limits import head_too_large
from codexgate.server.request_id import request_id_of
from codexgate.server.streaming import StreamOutcome

__all__ = ["GatewayASGI"]


class GatewayASGI:
    """Request id and head limit for all; the direct endpoints direct; the rest to FastAPI."""

    def __init__(
        self,
        app: FastAPI,
        *,
        routes: RouteTable,
        key_check: KeyCheck,
        max_header_size: int,
        cors: bool,
    ) -> None:
        self.app = app
        self.state = app.state
        self.routes = routes
        self.direct = routes.direct  # path -> endpoint, for POST
        self.key_check = key_check
        self.max_header_size = max_header_size
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan, websockets (the key check is in the app)
            return
        try:
            await self._http(scope, receive, send)
        finally:
            # The one place that cannot be skipped: an upstream call the endpoint began and did not
            # finish (an unexpected error on any path) gives back its slot and its connection here.
            call = scope["state"].get("call")
            if call is not None and not call.finished:
                call.finish(StreamOutcome(status=500, error_code="internal_error"))

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        header = (b"x-request-id", request_id_of(scope).encode())
        too_large = head_too_large(scope, self.max_header_size)
        if too_large is not None:
            await self._answer(error_response(too_large, self.routes.dialect_for(scope)), header, scope, receive, send)
            return
        direct = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
        if direct is None or (self.cors and _has_origin(scope)):
            await self._through_fastapi(scope, receive, send, header)
            return
        refused = self.key_check.admit(scope)
        if refused is not None:
            response = error_response(refused, direct.dialect)
        else:
            scope["app"] = self.app  # what Request.app (and so the endpoint's gateway) is read from
            try:
                response = await direct.function(Request(scope, receive))
            except Exception as exc:
                response = exception_response(exc, scope, direct.dialect)
        await self._answer(response, header, scope, receive, send)

    @staticmethod
    async def _answer(
        response: Response, header: tuple[bytes, bytes], scope: Scope, receive: Receive, send: Send
    ) -> None:
        response.raw_headers += (header, (b"request-id", header[1]))
        try:
            await response(scope, receive, send)
        except Exception as exc:  # after the head went out: nothing left to send but the log line
            log_unexpected(exc, scope)

    async def _through_fastapi(self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes]) -> None:
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), header, (b"request-id", header[1])]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # FastAPI's outermost layer answered it through exception_response (which logged it) and
            # raised it again; only if that answer could not start is there anything left to do.
            if not started:
                log_unexpected(exc, scope)
                fallback = error_response(internal_error(request_id_of(scope)), self.routes.dialect_for(scope))
                await self._answer(fallback, header, scope, receive, send)


def _has_origin(scope: Scope) -> bool:
    headers: Any = scope["headers"]
    return any(name == b"origin" for name, _ in headers)
