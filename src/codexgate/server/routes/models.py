"""``GET /v1/models`` and ``GET /v1/models/{id}``: the backend's list plus effort aliases.

A request with an ``anthropic-version`` header (an Anthropic client) gets Anthropic's list shape: the
catalog's models and the ``claude-*`` names of the setting ``anthropic_models`` (its patterns without
glob characters).
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from codexgate.protocol.anthropic_models import anthropic_model_list
from codexgate.server.gateway import gateway_of

router = APIRouter()

ANTHROPIC_VERSION_HEADER = "anthropic-version"
_GLOB_CHARACTERS = frozenset("*?[")


def claude_names(table: dict[str, str]) -> list[str]:
    """The literal ``claude-*`` names among the mapping table's patterns."""
    return [name for name in table if name.lower().startswith("claude-") and not _GLOB_CHARACTERS & set(name)]


@router.get("/v1/models")
@router.get("/models", include_in_schema=False)
async def list_models(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    await gateway.require_credentials()
    models = await gateway.models.models()
    if ANTHROPIC_VERSION_HEADER in request.headers:
        names = [str(model["id"]) for model in models]
        names += claude_names(gateway.settings.translation.anthropic_models)
        created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return JSONResponse(anthropic_model_list(names, created_at))
    document: dict[str, Any] = {"object": "list", "data": models}
    if "client_version" in request.query_params:
        # The Codex CLI asks with ?client_version= and reads the backend's own `models` entries.
        document["models"] = gateway.models.entries
    return JSONResponse(document)


#: the path parameter, documented by hand: a typed handler parameter would make FastAPI build a field for it,
#: and import ``pydantic.v1`` (~15 ms of the server's start-up) to check that its type is not a v1 model.
MODEL_ID_PARAMETER = {
    "parameters": [{"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}]
}


@router.get("/v1/models/{model_id:path}", openapi_extra=MODEL_ID_PARAMETER)
@router.get("/models/{model_id:path}", include_in_schema=False)
async def get_model(request: Request) -> JSONResponse:
    gateway = gateway_of(request)
    await gateway.require_credentials()
    return JSONResponse(await gateway.models.get(str(request.path_params["model_id"])))
