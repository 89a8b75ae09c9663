"""Small glue for routes: the gateway of a request, and OpenAPI docs for hand-parsed bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel
from starlette.requests import Request

if TYPE_CHECKING:
    from codexgate.server.gateway import Gateway


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """Document a JSON body that the route reads itself (to control limits and error shapes)."""
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": model.model_json_schema(ref_template="#/components/schemas/{model}")}
            },
        }
    }
