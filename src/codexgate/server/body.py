"""Reading a JSON request body: size limit (413), JSON syntax, nesting depth and schema (400 naming the param).

orjson reads documents nested up to 1024 levels but writes only 255, so a deeper body would parse
here and fail later, when it is sent upstream (a 500). Such bodies are refused at read time
(:data:`MAX_DEPTH`), naming where the limit was passed. The check costs two ``bytes.count`` calls
for the usual body; only a body with more than :data:`MAX_DEPTH` brackets is walked.
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect, Request

from codexgate.errors import APIError, invalid_request
from codexgate.server.errors import loc_to_param

#: the deepest nesting accepted (orjson serializes at most 255 levels)
MAX_DEPTH: Final = 255


def too_deep_at(data: Any, limit: int = MAX_DEPTH) -> str | None:
    """Where (a param path) ``data`` nests objects or arrays deeper than ``limit``; None when it does not."""
    stack: list[tuple[Any, int, str]] = [(data, 1, "")]
    while stack:
        value, depth, path = stack.pop()
        if depth > limit:
            return path or "body"
        if isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1, f"{path}[{index}]"))
    return None


def body_too_large(limit: int) -> APIError:
    return APIError(
        413,
        f"Request body is larger than the limit of {limit} bytes (setting max_body_size).",
        type="invalid_request_error",
        code="request_too_large",
    )


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    parts: list[bytes] = []
    total = 0
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise body_too_large(limit)
            parts.append(chunk)
    except ClientDisconnect:
        raise APIError(400, "The client disconnected before sending the whole body.", code="incomplete_body") from None
    return b"".join(parts)


async def read_json(request: Request, model: type[BaseModel], limit: int) -> dict[str, Any]:
    """The body as a dict, after checking it against ``model`` (the dict keeps unknown fields)."""
    raw = await read_body(request, limit)
    if not raw.strip():
        raise invalid_request("The request body is empty; expected a JSON object.", code="invalid_json")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_request(
            f"We could not parse the JSON body of your request ({exc.msg}).", code="invalid_json"
        ) from None
    if not isinstance(data, dict):
        raise invalid_request("The request body must be a JSON object.", code="invalid_json")
    if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH:
        where = too_deep_at(data)
        if where is not None:
            raise invalid_request(
                f"The JSON body nests deeper than {MAX_DEPTH} levels (at '{where[:200]}').",
                param=where[:200],
                code="invalid_json",
            )
    try:
        model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        param = loc_to_param(tuple(first["loc"]))
        missing = first["type"] == "missing"
        message = (
            f"Missing required parameter: '{param}'." if missing else f"Invalid value for '{param}': {first['msg']}."
        )
        raise invalid_request(
            message, param=param, code="missing_required_parameter" if missing else "invalid_value"
        ) from None
    return data
