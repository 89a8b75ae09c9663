"""Request validation, auth, headers, HTTP-error scenarios, scenario choice and ``GET /models``."""

from __future__ import annotations

import gzip
import json
import time
from typing import Any

import httpx
import pytest

from codexgate.testing import RateLimits, Scenario, UpstreamSimulator
from codexgate.testing.scenarios import last_user_text
from tests.testing.support import AUTH, events_of, request_body

RATE_LIMIT_HEADERS = [
    f"x-codex-{window}-{suffix}"
    for window in ("primary", "secondary")
    for suffix in ("used-percent", "window-minutes", "reset-at", "reset-after-seconds")
] + ["x-codex-plan-type"]


def _without(key: str) -> dict[str, Any]:
    body = request_body()
    del body[key]
    return body


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        (request_body(store=True), 400, "Store must be set to false"),
        (_without("store"), 400, "Store must be set to false"),
        (request_body(stream=False), 400, "Stream must be set to true"),
        (_without("instructions"), 400, "Instructions are required"),
        (request_body(instructions=""), 400, "Instructions are required"),
        (request_body(max_output_tokens=10), 400, "Unsupported parameter: max_output_tokens"),
        (request_body(temperature=0.2), 400, "Unsupported parameter: temperature"),
        (request_body(top_p=0.5), 400, "Unsupported parameter: top_p"),
        (request_body(metadata={"a": "b"}), 400, "Unsupported parameter: metadata"),
        (request_body(input=[{"type": "message", "role": "system", "content": "x"}]), 400, "System messages"),
        (
            request_body(input=[{"type": "reasoning", "id": "rs_123", "summary": []}]),
            404,
            "Item with id 'rs_123' not found. Items are not persisted when `store` is set to false.",
        ),
    ],
)
def test_backend_rejections(http: httpx.Client, body: dict[str, Any], status: int, detail: str) -> None:
    response = http.post("/responses", json=body, headers=AUTH)
    assert response.status_code == status
    assert response.json()["detail"].startswith(detail)
    assert response.headers["x-request-id"]


def test_validation_can_be_switched_off(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.validate = False
    response = http.post("/responses", json=request_body(store=True, temperature=1), headers=AUTH)
    assert response.status_code == 200 and events_of(response.content)[-1]["type"] == "response.completed"


def test_developer_messages_and_string_input_are_accepted(http: httpx.Client) -> None:
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "be brief"}]}]
    assert http.post("/responses", json=request_body(input=items), headers=AUTH).status_code == 200
    assert http.post("/responses", json=request_body(input="hello"), headers=AUTH).status_code == 200


def test_invalid_json_is_a_400(http: httpx.Client) -> None:
    response = http.post("/responses", content=b"{not json", headers=AUTH)
    assert response.status_code == 400 and "detail" in response.json()


def test_bearer_token_is_required(http: httpx.Client) -> None:
    response = http.post("/responses", json=request_body())
    assert response.status_code == 401 and response.json() == {"detail": "Unauthorized"}
    assert http.post("/responses", json=request_body(), headers={"authorization": "Basic x"}).status_code == 401


def test_accepted_tokens_and_account_id(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.accepted_tokens = {"good"}
    bad = http.post("/responses", json=request_body(), headers={"authorization": "Bearer bad"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "token_invalidated"
    assert http.post("/responses", json=request_body(), headers={"authorization": "Bearer good"}).status_code == 200
    sim.require_account_id = True
    assert http.post("/responses", json=request_body(), headers={"authorization": "Bearer good"}).status_code == 401
    ok = http.post(
        "/responses", json=request_body(), headers={"authorization": "Bearer good", "chatgpt-account-id": "acct"}
    )
    assert ok.status_code == 200
    assert [r.outcome for r in sim.requests] == ["rejected", "completed", "rejected", "completed"]


def test_every_answer_carries_request_id_and_rate_limit_headers(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.rate_limits = RateLimits(primary_used_percent=87.5, secondary_window_minutes=60, plan_type="pro")
    answers = [
        http.post("/responses", json=request_body(), headers=AUTH),
        http.post("/responses", json=request_body(store=True), headers=AUTH),
    ]
    sim.enqueue("http_429_usage_limit")
    answers.append(http.post("/responses", json=request_body(), headers=AUTH))
    ids = set()
    for response in answers:
        assert all(name in response.headers for name in RATE_LIMIT_HEADERS), response.headers
        ids.add(response.headers["x-request-id"])
        assert response.headers["x-codex-primary-used-percent"] == "87.5"
        assert response.headers["x-codex-secondary-window-minutes"] == "60"
        assert response.headers["x-codex-plan-type"] == "pro"
        reset_at = int(response.headers["x-codex-primary-reset-at"])
        assert reset_at - int(response.headers["x-codex-primary-reset-after-seconds"]) == pytest.approx(
            time.time(), abs=5
        )
    assert len(ids) == 3 and {r.request_id for r in sim.requests} == ids


def test_usage_limit_429_body(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.enqueue(Scenario("http_429_usage_limit", resets_in_seconds=120))
    response = http.post("/responses", json=request_body(), headers=AUTH)
    assert response.status_code == 429
    error = response.json()["error"]
    assert error["type"] == "usage_limit_reached" and error["plan_type"] == "plus" and error["message"]
    assert error["resets_in_seconds"] == 120
    assert error["resets_at"] == pytest.approx(time.time() + 120, abs=5)
    assert sim.requests[-1].outcome == "http_error" and sim.requests[-1].status == 429


@pytest.mark.parametrize(
    ("scenario", "status", "check"),
    [
        (Scenario("http_400"), 400, lambda r: r.json()["detail"].startswith("Unsupported parameter")),
        (Scenario("http_401"), 401, lambda r: r.json()["error"]["code"] == "token_expired"),
        (Scenario("http_500"), 500, lambda r: r.json()["error"]["type"] == "server_error"),
        (Scenario("http_502"), 502, lambda r: "Bad Gateway" in r.text),
        (Scenario("http_503"), 503, lambda r: r.json()["error"]["code"] == "server_is_overloaded"),
        (Scenario("http_500", status=504), 504, lambda r: "error" in r.json()),
        (Scenario("http_400", body={"detail": "Instructions are not valid"}), 400, lambda r: "not valid" in r.text),
        (Scenario("http_503", body="upstream connect error", headers={"retry-after": "2"}), 503, lambda r: True),
    ],
)
def test_http_error_scenarios(
    sim: UpstreamSimulator, http: httpx.Client, scenario: Scenario, status: int, check: Any
) -> None:
    sim.enqueue(scenario)
    response = http.post("/responses", json=request_body(), headers=AUTH)
    assert response.status_code == status and check(response)
    if scenario.headers:
        assert response.headers["retry-after"] == "2"


def test_scenario_choice_queue_then_marker_then_default(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.default_scenario = Scenario("refusal")
    sim.enqueue("reasoning", Scenario("http_503"))
    assert sim.queued == 2
    marked = request_body("please use scenario:tools now")
    for body in (marked, marked, marked, request_body("plain")):
        http.post("/responses", json=body, headers=AUTH)
    assert [r.scenario for r in sim.requests] == ["reasoning", "http_503", "tool_calls", "refusal"]
    assert sim.queued == 0


def test_marker_is_read_from_the_last_user_message(sim: UpstreamSimulator, http: httpx.Client) -> None:
    items = [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "scenario:refusal"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "no"}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "now scenario:incomplete"}]},
    ]
    http.post("/responses", json=request_body(input=items), headers=AUTH)
    http.post("/responses", json=request_body("no marker in this one"), headers=AUTH)
    assert [r.scenario for r in sim.requests] == ["incomplete", "text"]


def test_unknown_scenario_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown simulator scenario"):
        Scenario("does_not_exist")
    assert Scenario("tools").name == "tool_calls"


def test_requests_are_recorded(sim: UpstreamSimulator, http: httpx.Client) -> None:
    http.post("/responses?x=1", json=request_body(), headers={**AUTH, "Session-Id": "abc"})
    record = sim.requests[-1]
    assert (record.method, record.path, record.query) == ("POST", "/responses", {"x": "1"})
    assert record.headers["session-id"] == "abc" and record.headers["SESSION-ID"] == "abc"
    assert record.json == request_body() and record.body
    assert record.response_id and record.response_id.startswith("resp_")
    sim.clear()
    assert list(sim.requests) == []


async def test_max_recorded_keeps_only_the_latest_requests() -> None:
    async with UpstreamSimulator(max_recorded=3, require_auth=False) as bounded, httpx.AsyncClient() as client:
        for index in range(5):
            await client.post(bounded.base_url + "/responses", json=request_body(f"prompt {index}"))
    assert [last_user_text(r.json) for r in bounded.requests] == [f"prompt {index}" for index in (2, 3, 4)]


def test_any_base_path_works(sim: UpstreamSimulator, http: httpx.Client) -> None:
    assert http.post("/backend-api/codex/responses", json=request_body(), headers=AUTH).status_code == 200
    assert http.get("/backend-api/codex/models", headers=AUTH).status_code == 200
    assert http.get("/elsewhere", headers=AUTH).status_code == 404
    assert http.get("/responses", headers=AUTH).status_code == 405
    assert len(sim.responses_requests) == 2 and len(sim.models_requests) == 1  # the GET is recorded too


def test_models_endpoint(sim: UpstreamSimulator, http: httpx.Client) -> None:
    response = http.get("/models", params={"client_version": "0.169.0"}, headers=AUTH)
    assert response.status_code == 200 and response.headers["x-request-id"]
    models = response.json()["models"]
    slugs = [m["slug"] for m in models]
    assert {"gpt-5", "gpt-5-codex", "gpt-5.1-codex-mini"} <= set(slugs)
    for model in models:
        assert {
            "slug",
            "display_name",
            "description",
            "priority",
            "visibility",
            "supported_in_api",
            "supported_reasoning_levels",
            "default_reasoning_level",
            "context_window",
            "input_modalities",
            "support_verbosity",
            "default_verbosity",
            "supports_reasoning_summary_parameter",
        } <= set(model)
        assert all({"effort", "description"} == set(level) for level in model["supported_reasoning_levels"])
    assert any(m["visibility"] != "list" for m in models)
    assert sim.models_requests[-1].query == {"client_version": "0.169.0"}


def test_models_list_status_and_auth_are_settable(sim: UpstreamSimulator, http: httpx.Client) -> None:
    sim.models = [{"slug": "only-one", "visibility": "list"}]
    assert http.get("/models", headers=AUTH).json() == {"models": [{"slug": "only-one", "visibility": "list"}]}
    sim.models_status = 500
    assert http.get("/models", headers=AUTH).status_code == 500
    assert http.get("/models").status_code == 401


def test_large_and_gzipped_bodies_are_read(sim: UpstreamSimulator, http: httpx.Client) -> None:
    big = request_body("x " * 2_000_000)  # ~4 MB, like a prompt with a base64 image
    assert http.post("/responses", json=big, headers=AUTH).status_code == 200
    assert sim.requests[-1].json == big
    compressed = gzip.compress(json.dumps(request_body("zipped")).encode())
    headers = {**AUTH, "content-encoding": "gzip", "content-type": "application/json"}
    assert http.post("/responses", content=compressed, headers=headers).status_code == 200
    assert sim.requests[-1].json == request_body("zipped")
    long_header = {**AUTH, "x-codex-turn-metadata": "m" * 20_000}
    assert http.post("/responses", json=request_body(), headers=long_header).status_code == 200
