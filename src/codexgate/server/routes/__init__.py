"""The server's endpoints, one module per API area; :data:`ROUTERS` is what the app includes."""

from __future__ import annotations

from fastapi import APIRouter

from codexgate.server.routes import chat, health, messages, metrics, models, responses

__all__ = ["ROUTERS"]

#: every router of the app; an endpoint declared in one of them is served by both ways in.
ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    chat.router,
    responses.router,
    messages.router,
    models.router,
    metrics.router,
)
