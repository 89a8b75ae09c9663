"""``GET /v1/models`` and ``GET /v1/models/{id}``: the backend's list plus effort aliases."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from codexgate.server.gateway import gateway_of

router = APIRouter()


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    gateway.require_credentials()
    document: dict[str, Any] = {"object": "list", "data": await gateway.models.models()}
    if "client_version" in request.query_params:
        # The Codex CLI asks with ?client_version= and reads the backend's own `models` entries.
        document["models"] = gateway.models.entries
    return JSONResponse(document)


@router.get("/v1/models/{model_id:path}")
@router.get("/models/{model_id:path}", include_in_schema=False)
async def get_model(request: Request, model_id: str) -> JSONResponse:
    gateway = gateway_of(request)
    gateway.require_credentials()
    return JSONResponse(await gateway.models.get(model_id))
