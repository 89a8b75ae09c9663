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

Before any of that, the rules of :mod:`codexgate.server.front` (Host, Origin, Content-Type) refuse
what a web page in the user's browser could send; WebSocket upgrades meet the Host and Origin rules
too (closed with 1008 before they are accepted).

**Every request leaves a trace.** An answer endpoint that began a :class:`~codexgate.server.gateway.Call`
is recorded by it (usage row, metrics, access line). Every other request is recorded here when it
ends: one access line and one count in ``/metrics`` (endpoint = the route's name or template, or
``unknown``), plus a usage row when it was for an answer endpoint and passed the key check (a
malformed body, a body too large). A refused API key is counted (``codexgate_auth_failures_total``)
and a burst of them is named in a rate-limited warning line; it never writes a usage row.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Final

import orjson
from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from codexgate.errors import APIError
from codexgate.observability.logging import log_request
from codexgate.server.access import KeyCheck
from codexgate.server.endpoints import RouteTable
from codexgate.server.errors import error_for, error_response, internal_error, log_unexpected
from codexgate.server.front import AuthFailureWatch, FrontRules, content_type_refusal
from codexgate.server.limits import head_too_large
from codexgate.server.request_id import request_id_of
from codexgate.server.streaming import StreamOutcome
from codexgate.storage.usage_writer import UsageRecord

__all__ = ["GatewayASGI"]

#: bytes of an error body read back (FastAPI's way) to learn its error code for the trace
ERROR_BODY_PEEK: Final = 16 * 1024
KEY_REFUSED_CODE: Final = "invalid_api_key"


@dataclass(slots=True)
class Trace:
    """How a request that began no upstream call ended, for its access line and metrics."""

    started_at: float
    status: int = 500
    error_code: str | None = None
    #: the front rules and the key check let it through
    admitted: bool = True

    def error(self, error: APIError) -> None:
        self.status, self.error_code = error.status_code, error.code or error.type


class GatewayASGI:
    """Front rules, request id and head limit for all; the direct endpoints direct; the rest to FastAPI."""

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
        settings = getattr(app.state, "settings", None)
        server = settings.server if settings is not None else None
        self.front = FrontRules(
            allowed_hosts=server.allowed_hosts if server is not None else (),
            cors_origins=server.cors_origins if server is not None else (),
            bind_host=server.host if server is not None else "127.0.0.1",
        )
        self.auth_failures = AuthFailureWatch()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "websocket" and self._front_refusal(scope) is not None:
                await send({"type": "websocket.close", "code": 1008})  # before accept: the upgrade fails
                return
            await self.app(scope, receive, send)  # lifespan, websockets (the key check is in the app)
            return
        trace = Trace(started_at=time.monotonic())
        try:
            await self._http(scope, receive, send, trace)
        finally:
            # The one place that cannot be skipped: an upstream call the endpoint began and did not
            # finish (an unexpected error on any path) gives back its slot and its connection here.
            call = scope["state"].get("call")
            if call is None:
                self._record(scope, trace)
            elif not call.finished:
                call.finish(StreamOutcome(status=500, error_code="internal_error"))

    def _front_refusal(self, scope: Scope) -> APIError | None:
        no_keys = not self.key_check.key_store.has_keys()
        return (
            self.front.host_refusal(scope, no_keys=no_keys)
            or self.front.origin_refusal(scope)
            or (None if self._console_path(scope) else content_type_refusal(scope))
        )

    def _console_path(self, scope: Scope) -> bool:
        """Under the dashboard: its HTML forms post ``application/x-www-form-urlencoded``, guarded by its
        own session, same-origin and CSRF checks instead of the JSON-only rule."""
        prefixes = self.key_check.open_prefixes
        return bool(prefixes) and str(scope.get("path", "")).startswith(prefixes)

    async def _http(self, scope: Scope, receive: Receive, send: Send, trace: Trace) -> None:
        header = (b"x-request-id", request_id_of(scope).encode())
        refused = head_too_large(scope, self.max_header_size) or self._front_refusal(scope)
        if refused is not None:
            trace.error(refused)
            trace.admitted = False
            await self._answer(error_response(refused, self.routes.dialect_for(scope)), header, scope, receive, send)
            return
        direct = self.direct.get(scope["path"]) if scope["method"] == "POST" else None
        if direct is None or (self.cors and _has_origin(scope)):
            await self._through_fastapi(scope, receive, send, header, trace)
            return
        refused = self.key_check.admit(scope)
        if refused is not None:
            trace.error(refused)
            self._key_refused(scope, trace)
            response = error_response(refused, direct.dialect)
        else:
            scope["app"] = self.app  # what Request.app (and so the endpoint's gateway) is read from
            try:
                response = await direct.function(Request(scope, receive))
                trace.status = response.status_code
            except Exception as exc:
                error = error_for(exc)
                if error is None:
                    log_unexpected(exc, scope)
                    error = internal_error(request_id_of(scope))
                trace.error(error)
                response = error_response(error, direct.dialect)
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

    async def _through_fastapi(
        self, scope: Scope, receive: Receive, send: Send, header: tuple[bytes, bytes], trace: Trace
    ) -> None:
        started = False
        peek = False

        async def send_with_id(message: Message) -> None:
            nonlocal started, peek
            if message["type"] == "http.response.start":
                started = True
                trace.status = message["status"]
                peek = trace.status >= 400
                message["headers"] = [*message.get("headers", []), header, (b"request-id", header[1])]
            elif peek and message["type"] == "http.response.body":
                peek = False
                trace.error_code = _error_code_of(message.get("body", b""))
                if trace.status == 401 and trace.error_code == KEY_REFUSED_CODE:
                    self._key_refused(scope, trace)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            # FastAPI's outermost layer answered it through exception_response (which logged it) and
            # raised it again; only if that answer could not start is there anything left to do.
            if not started:
                log_unexpected(exc, scope)
                fallback = internal_error(request_id_of(scope))
                trace.error(fallback)
                response = error_response(fallback, self.routes.dialect_for(scope))
                await self._answer(response, header, scope, receive, send)

    # ---- the trace of a request that began no upstream call -----------------------------------
    def _key_refused(self, scope: Scope, trace: Trace) -> None:
        trace.admitted = False
        metrics = getattr(self.state, "metrics", None)
        if metrics is not None:
            metrics.auth_failure()
        client = scope.get("client")
        self.auth_failures.failed(str(client[0]) if client else "unknown")

    def _endpoint_name(self, scope: Scope) -> tuple[str, bool]:
        """A bounded name for the endpoint ``scope`` was for, and whether it is an answer endpoint."""
        path = scope["path"]
        if path in self.direct:
            return path.removeprefix("/v1").strip("/").replace("/", "."), True
        route = scope.get("route")
        template = getattr(route, "path", None)
        return (template if isinstance(template, str) else "unknown"), False

    def _record(self, scope: Scope, trace: Trace) -> None:
        try:
            endpoint, answers = self._endpoint_name(scope)
            state: dict[str, Any] = scope["state"]
            record = UsageRecord(
                endpoint=endpoint,
                status=trace.status,
                key_name=state.get("key_name") if trace.admitted else None,
                error_code=trace.error_code,
                duration_ms=(time.monotonic() - trace.started_at) * 1000,
                request_id=request_id_of(scope),
            )
            gateway = getattr(self.state, "gateway", None)
            if answers and trace.admitted and scope["method"] == "POST" and gateway is not None:
                gateway.record(scope["method"], scope["path"], record)  # row, metrics, access line
                return
            metrics = getattr(self.state, "metrics", None)
            if metrics is not None:
                metrics.request_finished(record)
            log_request(
                scope["method"],
                scope["path"],
                trace.status,
                duration_ms=record.duration_ms,
                request_id=record.request_id,
                key_name=record.key_name,
                error_code=trace.error_code,
            )
        except Exception as exc:  # the trace must never turn an answered request into a failure
            log_unexpected(exc, scope)


def _error_code_of(body: bytes) -> str | None:
    """The ``code`` (else ``type``) of an error body in either dialect; None if it is not one."""
    if len(body) > ERROR_BODY_PEEK:
        return None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    error = document.get("error") if isinstance(document, dict) else None
    if not isinstance(error, dict):
        return None
    code = error.get("code") or error.get("type")
    return code[:100] if isinstance(code, str) else None


def _has_origin(scope: Scope) -> bool:
    headers: Any = scope["headers"]
    return any(name == b"origin" for name, _ in headers)
