"""Map the Codex backend's HTTP errors to OpenAI-style errors (protocol.md §4, issue 5).

Pure: status, body and headers in; an :class:`APIError` out. The messages carry the backend's own
text where it helps the user, and never a token.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from codexgate.errors import APIError

LOGIN_HINT = "Run `codexgate login` to sign in again."


def _parse(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _backend_message(data: Mapping[str, Any], body: bytes) -> str:
    detail = data.get("detail")
    if isinstance(detail, str):
        return detail
    if isinstance(detail, (list, dict)):
        return orjson.dumps(detail).decode()
    error = data.get("error")
    if isinstance(error, Mapping) and isinstance(error.get("message"), str):
        return str(error["message"])
    if isinstance(error, str):
        return error
    text = body.decode("utf-8", "replace").strip()
    return text[:500] if text else "no details"


def _format_reset(seconds: int) -> str:
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() + seconds))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    span = f"{hours} h {minutes} min" if hours else f"{max(minutes, 1)} min"
    return f"in {span} ({when})"


def usage_limit_error(data: Mapping[str, Any]) -> APIError:
    """The 429 for a ChatGPT usage limit: OpenAI's envelope, with the type and the fields the Codex CLI
    reads to tell its user when the limit resets (``plan_type``, ``resets_at``, ``resets_in_seconds``)."""
    error = data.get("error") if isinstance(data.get("error"), Mapping) else {}
    assert isinstance(error, Mapping)
    code = str(error.get("type") or error.get("code") or "usage_limit_reached")
    seconds_raw = error.get("resets_in_seconds")
    if not isinstance(seconds_raw, (int, float)) and isinstance(error.get("resets_at"), (int, float)):
        seconds_raw = float(error["resets_at"]) - time.time()
    seconds = max(int(seconds_raw), 1) if isinstance(seconds_raw, (int, float)) else None
    plan = error.get("plan_type")
    message = "Your ChatGPT usage limit has been reached"
    if plan:
        message += f" (plan: {plan})"
    message += f"; it resets {_format_reset(seconds)}." if seconds else "."
    headers = {"retry-after": str(seconds)} if seconds else {}
    extra: dict[str, Any] = {"plan_type": plan} if isinstance(plan, str) else {}
    if seconds:
        resets_at = error.get("resets_at")
        extra["resets_at"] = int(resets_at) if isinstance(resets_at, (int, float)) else int(time.time()) + seconds
        extra["resets_in_seconds"] = seconds
    return APIError(429, message, type=code, code=code, headers=headers, extra=extra)


def map_http_error(status: int, body: bytes, headers: Mapping[str, str]) -> APIError:
    """The error a client sees for an upstream HTTP error answered before any event."""
    data = _parse(body)
    message = _backend_message(data, body)
    if status == 401:
        return APIError(
            401,
            f"The Codex backend rejected the ChatGPT credentials ({message}). {LOGIN_HINT}",
            type="authentication_error",
            code="invalid_credentials",
        )
    if status == 429:
        error = data.get("error")
        if isinstance(error, Mapping) and (error.get("type") or error.get("code")) in (
            "usage_limit_reached",
            "usage_not_included",
        ):
            return usage_limit_error(data)
        retry_after = headers.get("retry-after")
        return APIError(
            429,
            f"Rate limited by the Codex backend: {message}",
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers={"retry-after": retry_after} if retry_after else None,
        )
    if status == 403:
        return APIError(403, f"The Codex backend refused the request: {message}", type="permission_error")
    if status == 404:
        return APIError(404, f"The Codex backend answered 404: {message}", type="not_found_error", code="not_found")
    if 400 <= status < 500:
        code = None
        error = data.get("error")
        if isinstance(error, Mapping):
            code = error.get("code") if isinstance(error.get("code"), str) else None
        return APIError(
            400 if status in (400, 422) else status,
            f"The Codex backend rejected the request: {message}",
            type="invalid_request_error",
            param=error.get("param") if isinstance(error, Mapping) and isinstance(error.get("param"), str) else None,
            code=code,
        )
    return APIError(
        502,
        f"The Codex backend failed with HTTP {status}: {message}",
        type="upstream_error",
        code="upstream_error",
    )


def unreachable(reason: str) -> APIError:
    return APIError(
        502, f"Could not reach the Codex backend: {reason}", type="upstream_error", code="upstream_unreachable"
    )


def upstream_timeout(seconds: float) -> APIError:
    return APIError(
        504,
        f"The Codex backend sent nothing for {seconds:g} s (setting read_timeout).",
        type="timeout_error",
        code="upstream_timeout",
    )


def broken_mid_stream(exc: BaseException) -> APIError:
    return APIError(
        502,
        f"The connection to the Codex backend broke mid-stream ({type(exc).__name__}).",
        type="upstream_error",
        code="upstream_disconnected",
    )


def unexpected_encoding(encoding: str) -> APIError:
    """The backend compressed its answer although the gateway asked for ``identity``: the gateway
    never decompresses (no decompression bomb can reach it), so that answer cannot be used."""
    return APIError(
        502,
        f"The Codex backend sent a compressed answer ({encoding[:40]!r}) although none was asked for.",
        type="upstream_error",
        code="upstream_protocol_error",
    )
