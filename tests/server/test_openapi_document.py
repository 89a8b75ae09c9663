"""The OpenAPI document: the hand-documented request bodies and the model id parameter, built on first use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from codexgate.server.app import create_app
from codexgate.server.openapi import BODY_MODELS, body_schemas
from tests.helpers import settings_for


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"]} if isinstance(node.get("$ref"), str) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def _document(tmp_path: Path) -> dict[str, Any]:
    app = create_app(settings_for(tmp_path, "http://127.0.0.1:9"))
    return app.app.openapi()  # type: ignore[no-any-return]


def test_every_body_is_documented_and_every_reference_resolves(tmp_path: Path) -> None:
    document = _document(tmp_path)
    schemas = document["components"]["schemas"]
    bodies = {
        path: operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        for path, item in document["paths"].items()
        for operation in item.values()
        if "requestBody" in operation
    }
    assert bodies["/v1/chat/completions"] == "#/components/schemas/ChatCompletionRequest"
    assert bodies["/v1/responses"] == "#/components/schemas/ResponsesRequest"
    assert bodies["/v1/messages"] == "#/components/schemas/MessagesRequest"
    assert {"ChatCompletionRequest", "ResponsesRequest", "MessagesRequest"} <= set(BODY_MODELS)
    assert schemas["ChatCompletionRequest"]["properties"]["model"]["type"] == "string"
    for reference in _refs(document):
        assert reference.startswith("#/components/schemas/")
        assert reference.removeprefix("#/components/schemas/") in schemas, reference
    assert _document(tmp_path) == document  # asked again: the same document


def test_body_schemas_are_those_pydantic_builds() -> None:
    schemas = body_schemas()
    for name, model in BODY_MODELS.items():
        built = model.model_json_schema(ref_template="#/components/schemas/{model}")
        built.pop("$defs", None)
        assert schemas[name] == built


def test_the_model_id_path_parameter_is_documented(tmp_path: Path) -> None:
    operation = _document(tmp_path)["paths"]["/v1/models/{model_id}"]["get"]
    assert operation["parameters"] == [
        {"name": "model_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ]
