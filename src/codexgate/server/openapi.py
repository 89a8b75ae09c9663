"""OpenAPI documentation for request bodies the routes read themselves (to control limits and errors)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

__all__ = ["BODY_SCHEMAS", "add_body_schemas", "openapi_body"]

REF_TEMPLATE = "#/components/schemas/{model}"
#: schemas referenced by hand-documented bodies; the app factory adds them to the OpenAPI components.
BODY_SCHEMAS: dict[str, Any] = {}


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body of a route that reads it itself."""
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
