"""Status, body and headers of the HTTP-error scenarios, shaped like the Codex backend's answers."""

from __future__ import annotations

import time
from typing import Any

import orjson

from codexgate.testing.scenarios import Scenario


def http_error(scenario: Scenario, *, plan_type: str = "plus") -> tuple[int, bytes, dict[str, str]]:
    """Status, body bytes and extra headers of an HTTP-error scenario, shaped like the backend's."""
    name = scenario.name
    status = scenario.status or {"http_429_usage_limit": 429}.get(name) or int(name.removeprefix("http_"))
    headers = {"content-type": "application/json"}
    body: Any
    if name == "http_400":
        body = {"detail": "Unsupported parameter: max_output_tokens"}
    elif name == "http_401":
        body = {
            "error": {
                "message": "Provided authentication token is expired. Please try signing in again.",
                "type": None,
                "code": "token_expired",
                "param": None,
            },
            "status": 401,
        }
    elif name == "http_403":
        body = {"detail": "Forbidden"}
    elif name == "http_404":
        body = {"detail": "Not Found"}
    elif name == "http_429_usage_limit":
        seconds = scenario.resets_in_seconds
        body = {
            "error": {
                "type": "usage_limit_reached",
                "message": "The usage limit has been reached",
                "plan_type": plan_type,
                "resets_at": int(time.time()) + seconds,
                "resets_in_seconds": seconds,
            }
        }
    elif status == 502:
        headers["content-type"] = "text/html; charset=UTF-8"
        body = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
    elif status == 503:
        body = {
            "error": {
                "message": "The server is overloaded or not ready yet.",
                "type": "server_error",
                "code": "server_is_overloaded",
                "param": None,
            }
        }
    else:
        body = {
            "error": {
                "message": "An error occurred while processing your request.",
                "type": "server_error",
                "code": None,
                "param": None,
            }
        }
    if scenario.body is not None:
        body = scenario.body
        if not isinstance(body, (dict, list)):
            headers["content-type"] = "text/plain; charset=utf-8"
    headers.update(scenario.headers or {})
    if isinstance(body, bytes):
        return status, body, headers
    if isinstance(body, str):
        return status, body.encode(), headers
    return status, orjson.dumps(body), headers
