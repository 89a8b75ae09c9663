"""The ASGI application uvicorn serves: one thin layer in front of the FastAPI app.

Every HTTP request gets its request id (``scope["state"]["request_id"]``, sent back as
``x-request-id``) and the head-size check here. The answer endpoints (``POST /v1/chat/completions``
and ``POST /v1/responses``, with and without ``/v1``) are then called directly, after the API-key
check: past FastAPI's routing, dependency and middleware layers, which every upstream event of a
stream would otherwise climb through on its way to the socket (and which every open stream would
keep in memory). Everything else — models, health, metrics, the OpenAPI document, 404/405, and any
request with an ``Origin`` header while CORS is configured — goes to the FastAPI app, which registers
the same endpoint functions, so both ways answer alike.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from codexgate.errors import APIError
from codexgate.server.access import KeyCheck
from codexgate.server.errors import error_response, internal_error, send_error
from codexgate.server.limits import head_too_large
from codexgate.server.request_id import RequestIdMiddleware, log_unexpected, request_id_of
from codexgate.server.streaming import StreamOutcome

Endpoint = Callable[[Request], Awaitable[Response]]


class GatewayASGI:
    """Request id and head limit for all; the answer endpoints direct; the rest to FastAPI."""

    def __init__(
        self,
        app: FastAPI,
        *,
        endpoints: Mapping[str, Endpoint],
        key_check: KeyCheck,
        max_header_size: int,
        cors: bool,
    ) -> None:
        self.app = app
        self.state = app.state
        self.endpoints = dict(endpoints)  # path -> endpoint, for POST
        self.key_check = key_check
        self.max_header_size = max_header_size
        self.cors = cors
        self._general = RequestIdMiddleware(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)  # lifespan, websockets
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
        request_id = request_id_of(scope)
        header = (b"x-request-id", request_id.encode())
        too_large = head_too_large(scope, self.max_header_size)
        if too_large is not None:
            await send_error(send, too_large, header)
            return
        endpoint = self.endpoints.get(scope["path"]) if scope["method"] == "POST" else None
        if endpoint is None or (self.cors and _has_origin(scope)):
            await self._general(scope, receive, send)
            return
        refused = self.key_check.admit(scope)
        if refused is not None:
            await send_error(send, refused, header)
            return
        scope["app"] = self.app  # what Request.app (and so the endpoint's gateway) is read from
        try:
            response = await endpoint(Request(scope, receive))
        except APIError as error:
            response = error_response(error)
        except Exception as exc:
            log_unexpected(exc, scope, request_id)
            response = error_response(internal_error(request_id))
        response.raw_headers.append(header)
        try:
            await response(scope, receive, send)
        except Exception as exc:  # after the head went out: nothing left to send but the log line
            log_unexpected(exc, scope, request_id)


def _has_origin(scope: Scope) -> bool:
    headers: Any = scope["headers"]
    return any(name == b"origin" for name, _ in headers)
