"""The app factory: ``create_app(settings)`` builds the ASGI app uvicorn serves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from starlette.responses import Response

from codexgate import __version__
from codexgate.config import Settings
from codexgate.protocol.errors import APIError
from codexgate.server.errors import error_response, install_error_handlers
from codexgate.server.gateway import Gateway
from codexgate.server.request_id import RequestIdMiddleware, request_id_of
from codexgate.server.routes import chat, health, models, responses
from codexgate.upstream.client import TokenSource, UpstreamClient

logger = logging.getLogger("codexgate.server")


def _default_tokens(settings: Settings) -> TokenSource:
    from codexgate.auth.refresh import TokenManager

    return TokenManager.from_settings(settings)


def create_app(settings: Settings, *, tokens: TokenSource | None = None) -> FastAPI:
    """Build the gateway. ``tokens`` replaces the credential manager (tests)."""
    token_source = tokens if tokens is not None else _default_tokens(settings)
    upstream = UpstreamClient(settings, token_source)
    gateway = Gateway(settings, token_source, upstream)
    _install_instructions(gateway, settings)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await upstream.start()
        try:
            yield
        finally:
            await upstream.aclose()
            gateway.flush_rate_limits()
            close = getattr(token_source, "aclose", None)
            if close is not None:
                await close()

    app = FastAPI(
        title="codexgate",
        version=__version__,
        summary="OpenAI-compatible gateway to the ChatGPT Codex backend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.state.settings = settings
    install_error_handlers(app)

    async def unexpected(request: Request, exc: Exception) -> Response:
        request_id = request_id_of(request.scope)
        return error_response(
            APIError(
                500,
                f"The server had an error processing your request (request id {request_id}).",
                type="server_error",
                code="internal_error",
            )
        )

    app.add_exception_handler(Exception, unexpected)
    app.include_router(health.router)
    app.include_router(chat.router)
    app.include_router(responses.router)
    app.include_router(models.router)
    app.add_middleware(RequestIdMiddleware)
    return app


def _install_instructions(gateway: Gateway, settings: Settings) -> None:
    try:
        from codexgate.upstream.instructions import resolve_instructions
    except ImportError:  # pragma: no cover - the resolver lands with the instructions issue work
        gateway.set_default_instructions(lambda _model: NEUTRAL_INSTRUCTIONS)
        return

    def resolver(model: str) -> str:
        return resolve_instructions(settings, model)

    gateway.set_default_instructions(resolver)


NEUTRAL_INSTRUCTIONS = "You are a helpful assistant."
