"""What the routes decide from the model catalog: the model and effort sent, and the request shape.

Every route reads the catalog through ``Gateway.model_rules()`` and decides here:

* :func:`check_model`: with a catalog, a name that is no catalog slug (after an effort suffix is
  split off) is a 404 ``model_not_found`` listing a few known names; a model whose
  ``minimal_client_version`` is above the version the gateway presents is a 400 naming the setting
  ``client_version``. Without a catalog, both are left to the backend.
* :func:`lite_body`: a full-shape body for a Responses Lite model, reshaped (``to_lite``; the
  ``additional_tools`` id is made here, ``at_`` + random hex).
* :func:`prepare_responses`: a Responses API body (HTTP or WebSocket) → the body, its shape and the
  client headers carried over. A client's Lite request (the Lite header or an ``additional_tools``
  item) goes on unchanged in shape; a full-shape request for a Lite model is reshaped.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from codexgate.protocol.catalog_rules import (
    ModelRules,
    Resolved,
    check_effort,
    client_too_old,
    client_too_old_error,
    is_lite,
)
from codexgate.protocol.lite_shape import is_lite_request, to_lite
from codexgate.server.gateway import Gateway
from codexgate.upstream.headers import carried_client_headers
from codexgate.upstream.models import unknown_model_error

__all__ = ["PreparedResponses", "check_model", "lite_body", "new_additional_tools_id", "prepare_responses"]


def new_additional_tools_id() -> str:
    return "at_" + secrets.token_hex(16)


def check_model(gateway: Gateway, rules: ModelRules, requested: str, resolved: Resolved) -> None:
    """404 for a name the catalog does not know; 400 for a model gated above our client version."""
    if rules.from_catalog and resolved.entry is None:
        raise unknown_model_error(requested, rules)
    version = gateway.settings.upstream.client_version
    if resolved.entry is not None and client_too_old(resolved, version):
        raise client_too_old_error(resolved.entry, version)


def lite_body(body: Mapping[str, Any], resolved: Resolved) -> dict[str, Any]:
    """``body`` in the Lite shape, the catalog's default effort used when it names none."""
    default_effort = resolved.entry.default_reasoning_level if resolved.entry is not None else None
    return to_lite(body, additional_tools_id=new_additional_tools_id(), default_effort=default_effort)


@dataclass
class PreparedResponses:
    """A Responses body ready for ``Gateway.open``: its shape and the client's headers carried over."""

    body: dict[str, Any]
    lite: bool
    client_headers: dict[str, str] = field(default_factory=dict)


async def prepare_responses(gateway: Gateway, body: Mapping[str, Any], headers: Mapping[str, str]) -> PreparedResponses:
    """Resolve the model (alias → model + effort), check it and its effort, pick the shape."""
    client_headers = carried_client_headers(headers)
    rules = await gateway.model_rules()
    requested = str(body.get("model"))
    resolved = rules.resolve(requested)
    check_model(gateway, rules, requested, resolved)
    prepared = dict(body)
    prepared["model"] = resolved.slug
    raw_reasoning = prepared.get("reasoning")
    reasoning = dict(raw_reasoning) if isinstance(raw_reasoning, Mapping) else {}
    if resolved.effort is not None:
        reasoning.setdefault("effort", resolved.effort)
    if reasoning:
        prepared["reasoning"] = reasoning
        explicit = isinstance(raw_reasoning, Mapping) and "effort" in raw_reasoning
        check_effort(resolved, reasoning.get("effort"), param="reasoning.effort" if explicit else "model")
    if is_lite_request(prepared, headers):
        return PreparedResponses(prepared, lite=True, client_headers=client_headers)
    if is_lite(resolved):
        return PreparedResponses(lite_body(prepared, resolved), lite=True, client_headers=client_headers)
    return PreparedResponses(prepared, lite=False, client_headers=client_headers)
