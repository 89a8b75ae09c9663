"""Small glue for routes: the gateway of a request, and OpenAPI docs for hand-parsed bodies."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from pydantic import BaseModel
from starlette.requests import Request

if TYPE_CHECKING:
    from codexgate.server.gateway import Gateway


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


REF_TEMPLATE = "#/components/schemas/{model}"
#: schemas referenced by hand-documented bodies; the app factory adds them to the OpenAPI components.
BODY_SCHEMAS: dict[str, Any] = {}


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """Document a JSON body that the route reads itself (to control limits and error shapes)."""
    schema = model.model_json_schema(ref_template=REF_TEMPLATE)
    BODY_SCHEMAS.update(schema.pop("$defs", {}))
    BODY_SCHEMAS[model.__name__] = schema
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}},
        }
    }


def add_body_schemas(app: FastAPI) -> None:
    """Put the schemas of :func:`openapi_body` into the app's OpenAPI components."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        document = generate()
        document.setdefault("components", {}).setdefault("schemas", {}).update(BODY_SCHEMAS)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
