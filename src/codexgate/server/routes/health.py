"""``GET /health``: liveness, version, whether credentials are present and (with ``state_url``) whether the
shared state answers. Never needs a key."""

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
    answer: dict[str, object] = {
        "status": "ok",
        "version": __version__,
        "credentials": bool(has()) if has is not None else False,
        "active_streams": gateway.limiter.active,
    }
    cluster = getattr(request.app.state, "cluster", None)
    if cluster is not None:  # several instances: whether the shared state answers (requests go on either way)
        answer["shared_state"] = "ok" if cluster.available else "unavailable"
    return JSONResponse(answer)
