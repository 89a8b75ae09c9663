"""APIErrors in Anthropic's envelope, statuses and headers."""

from __future__ import annotations

import json

import pytest

from codexgate.errors import APIError
from codexgate.protocol.anthropic_errors import anthropic_error, error_event, error_payload
from codexgate.protocol.outcome import error_from_error_event, stream_incomplete
from codexgate.upstream.errors import map_http_error, unreachable, upstream_timeout, usage_limit_error


@pytest.mark.parametrize(
    ("error", "status", "kind"),
    [
        (APIError(400, "bad field", param="max_tokens"), 400, "invalid_request_error"),
        (APIError(401, "bad key", type="invalid_request_error", code="invalid_api_key"), 401, "authentication_error"),
        (APIError(403, "no"), 403, "permission_error"),
        (APIError(404, "none"), 404, "not_found_error"),
        (APIError(413, "too big", code="request_too_large"), 413, "request_too_large"),
        (APIError(422, "unprocessable"), 422, "invalid_request_error"),
        (map_http_error(503, b'{"detail":"busy"}', {}), 529, "overloaded_error"),
        (map_http_error(500, b"oops", {}), 529, "overloaded_error"),
        (error_from_error_event({"code": "server_is_overloaded", "message": "busy"}), 529, "overloaded_error"),
        (error_from_error_event({"code": "server_error", "message": "x"}), 529, "overloaded_error"),
        (unreachable("connection refused"), 500, "api_error"),
        (upstream_timeout(30), 500, "api_error"),
        (stream_incomplete(), 500, "api_error"),
        (APIError(500, "internal", code="internal_error"), 500, "api_error"),
        (map_http_error(429, b'{"error":{"message":"slow"}}', {"retry-after": "3"}), 429, "rate_limit_error"),
    ],
)
def test_status_and_type(error: APIError, status: int, kind: str) -> None:
    got_status, body, _headers = anthropic_error(error)
    assert got_status == status
    assert body == {"type": "error", "error": {"type": kind, "message": body["error"]["message"]}}
    assert body["error"]["message"]
    assert error_payload(error) == body


def test_context_length_reads_prompt_is_too_long() -> None:
    error = error_from_error_event({"code": "context_length_exceeded", "message": "Your input exceeds the window."})
    status, body, _ = anthropic_error(error)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith("prompt is too long")
    assert "exceeds the window" in body["error"]["message"]


def test_not_logged_in() -> None:
    error = APIError(401, "Not signed in to ChatGPT.", type="authentication_error", code="not_logged_in")
    status, body, _ = anthropic_error(error)
    assert status == 401 and body["error"]["type"] == "authentication_error"
    assert "codexgate login" in body["error"]["message"]


def test_usage_limit_far_away() -> None:
    data = {"error": {"type": "usage_limit_reached", "plan_type": "plus", "resets_in_seconds": 7200}}
    status, body, headers = anthropic_error(usage_limit_error(data))
    assert status == 429 and body["error"]["type"] == "rate_limit_error"
    assert headers["retry-after"] == "7200" and headers["x-should-retry"] == "false"
    assert "resets" in body["error"]["message"]


def test_usage_limit_soon_may_be_retried() -> None:
    data = {"error": {"type": "usage_limit_reached", "resets_in_seconds": 30}}
    status, _body, headers = anthropic_error(usage_limit_error(data))
    assert status == 429 and headers["retry-after"] == "30" and "x-should-retry" not in headers


def test_usage_limit_without_headers_gets_retry_after_from_extra() -> None:
    error = APIError(
        429, "limit", type="usage_limit_reached", code="usage_limit_reached", extra={"resets_in_seconds": 90}
    )
    _status, _body, headers = anthropic_error(error)
    assert headers == {"retry-after": "90", "x-should-retry": "false"}


def test_only_safe_headers_pass() -> None:
    error = APIError(401, "bad key", headers={"www-authenticate": "Bearer", "x-internal": "secret"})
    assert anthropic_error(error)[2] == {"www-authenticate": "Bearer"}


def test_error_event_frame() -> None:
    frame = error_event(error_from_error_event({"code": "server_is_overloaded", "message": "busy"}))
    assert frame.startswith(b"event: error\ndata: ") and frame.endswith(b"\n\n")
    payload = json.loads(frame.split(b"data: ", 1)[1])
    assert payload == {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}
