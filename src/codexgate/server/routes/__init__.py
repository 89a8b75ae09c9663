"""The server's endpoints, one module per API area; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from codexgate.server.routes import chat, compact, health, messages, metrics, models, responses, responses_ws

__all__ = ["ROUTERS"]

#: every router of the app; an endpoint declared in one of them is served by both ways in.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    chat.router,
    compact.router,
    responses.router,
    responses_ws.router,
    messages.router,
    models.router,
    metrics.router,
)
