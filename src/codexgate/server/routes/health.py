"""``GET /health``: liveness, version and whether credentials are present. Never needs a key."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from codexgate import __version__
from codexgate.server.gateway import gateway_of

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    has = getattr(gateway.tokens, "has_credentials", None)
    return JSONResponse(
        {
            "status": "ok",
            "version": __version__,
            "credentials": bool(has()) if has is not None else False,
            "active_streams": gateway.limiter.active,
        }
    )
