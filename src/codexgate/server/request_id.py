"""The request id: ``req_`` + 24 hex digits, made once per request and kept in ``scope["state"]``.

Handlers and log lines read it with :func:`request_id_of`; the layer in front sends it back as
``x-request-id`` on every response.
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.types import Scope

__all__ = ["new_request_id", "request_id_of"]


def new_request_id() -> str:
    return "req_" + secrets.token_hex(12)


def request_id_of(scope: Scope) -> str:
    state: dict[str, Any] = scope.setdefault("state", {})
    request_id = state.get("request_id")
    if not isinstance(request_id, str):
        request_id = new_request_id()
        state["request_id"] = request_id
    return request_id
