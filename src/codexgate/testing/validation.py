"""Request checks the Codex backend makes, with its status codes and ``{"detail": …}`` bodies.

With the catalog (``models``) and the request headers, also what is reported of the 2026 backend
(protocol.md §6): a model whose ``minimal_client_version`` is above the client's version (read from
``User-Agent: originator/VERSION (…)``, else a ``version`` header) answers 400 "requires a newer
version of Codex"; a Lite model (``use_responses_lite``) refuses the full shape (400, or 404 for a
``lite_only`` one); a Lite request (the Lite header or an ``additional_tools`` item) has no top-level
``tools``, no ``parallel_tool_calls: true`` (400) and needs no ``instructions``.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

LITE_HEADER = "x-openai-internal-codex-responses-lite"
_AGENT_VERSION = re.compile(r"^[^/\s]+/v?(\d+(?:\.\d+)*)")

#: Top-level fields the backend refuses (protocol.md §4).
UNSUPPORTED_PARAMETERS = ("max_output_tokens", "temperature", "top_p", "metadata")


@dataclass(frozen=True)
class Rejection:
    status: int
    body: dict[str, Any]


def _detail(status: int, message: str) -> Rejection:
    return Rejection(status, {"detail": message})


def check_auth(
    headers: Mapping[str, str],
    *,
    accepted_tokens: Collection[str] | None,
    require_account_id: bool,
) -> Rejection | None:
    """401 without a bearer token or with one not in ``accepted_tokens``; 401 without an account id."""
    authorization = headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _detail(401, "Unauthorized")
    if accepted_tokens is not None and token.strip() not in accepted_tokens:
        return Rejection(
            401,
            {
                "error": {
                    "message": "Your authentication token could not be validated. Please try signing in again.",
                    "type": "invalid_request_error",
                    "code": "token_invalidated",
                    "param": None,
                },
                "status": 401,
            },
        )
    if require_account_id and not headers.get("chatgpt-account-id", "").strip():
        return _detail(401, "Missing chatgpt-account-id header")
    return None


def _item_id_rejection(items: list[Any]) -> Rejection | None:
    for item in items:
        if (
            isinstance(item, Mapping)
            and item.get("type") != "additional_tools"  # its id is the client's name for the tool list
            and isinstance(item.get("id"), str)
            and item["id"]
        ):
            return _detail(
                404,
                f"Item with id '{item['id']}' not found. Items are not persisted when `store` is set to false. "
                "Try again with `store` set to true, or remove this item from your input.",
            )
    return None


def client_version_of(headers: Mapping[str, str]) -> tuple[int, ...] | None:
    """The client's version from ``User-Agent`` (``codex_exec/0.169.0 (…)``), else the ``version`` header."""
    match = _AGENT_VERSION.match(headers.get("user-agent", "")) or _AGENT_VERSION.match(
        "v/" + headers.get("version", "")
    )
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def _version(text: Any) -> tuple[int, ...] | None:
    match = _AGENT_VERSION.match(f"v/{text}") if isinstance(text, str) else None
    return tuple(int(part) for part in match.group(1).split(".")) if match else None


def is_lite_request(body: Mapping[str, Any], headers: Mapping[str, str]) -> bool:
    if headers.get(LITE_HEADER, "").strip().lower() == "true":
        return True
    items = body.get("input")
    return isinstance(items, list) and any(
        isinstance(item, Mapping) and item.get("type") == "additional_tools" for item in items
    )


def _entry(models: Iterable[Mapping[str, Any]], slug: Any) -> Mapping[str, Any] | None:
    return next((entry for entry in models if entry.get("slug") == slug), None)


def check_model(
    body: Mapping[str, Any], headers: Mapping[str, str], models: Iterable[Mapping[str, Any]]
) -> Rejection | None:
    """The version gate and the Lite rules for the model the body names (None: the model is unknown here)."""
    entry = _entry(models, body.get("model"))
    if entry is None:
        return None
    needed = _version(entry.get("minimal_client_version"))
    ours = client_version_of(headers)
    if needed is not None and (ours is None or ours < needed):
        return _detail(
            400,
            f"The '{entry.get('slug')}' model requires a newer version of Codex. "
            "Please upgrade to the latest app or CLI and try again.",
        )
    lite = is_lite_request(body, headers)
    if entry.get("use_responses_lite") is True and not lite:
        if entry.get("lite_only") is True:
            return _detail(404, f"Model {entry.get('slug')} not found")
        return _detail(400, f"The '{entry.get('slug')}' model requires the Responses Lite request format")
    if lite:
        if "tools" in body:
            return _detail(400, "Unsupported parameter: tools (send tools as an additional_tools input item)")
        if body.get("parallel_tool_calls") is True:
            return _detail(400, "parallel_tool_calls is not supported for this model")
    return None


def check_body(
    body: Any, headers: Mapping[str, str] | None = None, models: Iterable[Mapping[str, Any]] = ()
) -> Rejection | None:
    """The backend's 400s (store, stream, instructions, unsupported parameters, role system, the model's
    version gate and Lite rules) and 404s."""
    if not isinstance(body, Mapping):
        return _detail(400, "Invalid request body: expected a JSON object")
    if body.get("store") is not False:
        return _detail(400, "Store must be set to false")
    if body.get("stream") is not True:
        return _detail(400, "Stream must be set to true")
    headers = headers or {}
    model_rejection = check_model(body, headers, models)
    if model_rejection is not None:
        return model_rejection
    instructions = body.get("instructions")
    if not is_lite_request(body, headers) and (not isinstance(instructions, str) or not instructions.strip()):
        return _detail(400, "Instructions are required")
    for name in UNSUPPORTED_PARAMETERS:
        if name in body:
            return _detail(400, f"Unsupported parameter: {name}")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return _detail(400, "Model is required")
    items = body.get("input")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping) and item.get("role") == "system":
                return _detail(400, "System messages are not allowed")
        return _item_id_rejection(items)
    if not isinstance(items, str):
        return _detail(400, "Input is required")
    return None
