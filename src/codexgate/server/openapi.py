"""OpenAPI documentation for request bodies the routes read themselves (to control limits and errors).

A route names its body model with :func:`openapi_body`; the model's JSON schema is built when the
OpenAPI document is first asked for (``/openapi.json``, ``/docs``), not when the routes are imported:
building the schemas is work the server's start-up does not need.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

__all__ = ["BODY_MODELS", "add_body_schemas", "body_schemas", "openapi_body"]

REF_TEMPLATE = "#/components/schemas/{model}"
#: models documented by hand as request bodies, by name; their schemas go into the OpenAPI components.
BODY_MODELS: dict[str, type[BaseModel]] = {}


def openapi_body(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting ``model`` as the JSON body of a route that reads it itself."""
    BODY_MODELS[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": REF_TEMPLATE.format(model=model.__name__)}}},
        }
    }


def body_schemas() -> dict[str, Any]:
    """The JSON schemas of the models named by :func:`openapi_body` and of the models they use."""
    schemas: dict[str, Any] = {}
    for name, model in BODY_MODELS.items():
        schema = model.model_json_schema(ref_template=REF_TEMPLATE)
        schemas.update(schema.pop("$defs", {}))
        schemas[name] = schema
    return schemas


def add_body_schemas(app: FastAPI) -> None:
    """Put the schemas of :func:`openapi_body` into the app's OpenAPI components (built on first use)."""
    generate = app.openapi
    built: dict[str, Any] = {}

    def openapi() -> dict[str, Any]:
        document = generate()  # FastAPI's, built once and kept
        if not built:
            built.update(body_schemas())
        document.setdefault("components", {}).setdefault("schemas", {}).update(built)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
