"""Request checks the Codex backend makes, with its status codes and ``{"detail": …}`` bodies."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

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
        if isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"]:
            return _detail(
                404,
                f"Item with id '{item['id']}' not found. Items are not persisted when `store` is set to false. "
                "Try again with `store` set to true, or remove this item from your input.",
            )
    return None


def check_body(body: Any) -> Rejection | None:
    """The backend's 400s (store, stream, instructions, unsupported parameters, role system) and 404s."""
    if not isinstance(body, Mapping):
        return _detail(400, "Invalid request body: expected a JSON object")
    if body.get("store") is not False:
        return _detail(400, "Store must be set to false")
    if body.get("stream") is not True:
        return _detail(400, "Stream must be set to true")
    instructions = body.get("instructions")
    if not isinstance(instructions, str) or not instructions.strip():
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
