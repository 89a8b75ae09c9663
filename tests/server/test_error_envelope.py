"""Errors the server itself produces come back in OpenAI's envelope, as the openai SDK's exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from codexgate.server.app import create_app
from codexgate.server.asgi import GatewayASGI
from tests.helpers import ServedApp, serve_in_thread, settings_for, write_auth_json


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    home = tmp_path_factory.mktemp("home")
    write_auth_json(home)
    # The upstream is never reached by these requests; a closed port makes any leak obvious.
    settings = settings_for(home, "http://127.0.0.1:9/codex", max_body_size=64 * 1024)
    with serve_in_thread(create_app(settings)) as served_app:
        yield served_app


@pytest.fixture(scope="module")
def unauthenticated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedApp]:
    home = tmp_path_factory.mktemp("empty-home")
    settings = settings_for(home, "http://127.0.0.1:9/codex")
    with serve_in_thread(create_app(settings)) as served_app:
        yield served_app


def _client(base: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base + "/v1", api_key="anything", max_retries=0, timeout=10)


def _assert_envelope(body: object, status: int) -> dict[str, object]:
    assert isinstance(body, dict)
    error = body.get("error", body)
    assert set(error) >= {"message", "type", "param", "code"}, body
    assert isinstance(error["message"], str) and error["message"]
    return error


def test_unknown_route_is_404_envelope(served: ServedApp) -> None:
    with pytest.raises(openai.NotFoundError) as info:
        _client(served.base_url).get("/nope", cast_to=object)
    _assert_envelope(info.value.body, 404)
    assert info.value.response.headers.get("x-request-id", "").startswith("req_")


def test_wrong_method_is_405_envelope(served: ServedApp) -> None:
    response = httpx.get(served.base_url + "/v1/chat/completions")
    assert response.status_code == 405
    error = _assert_envelope(response.json(), 405)
    assert error["type"] == "invalid_request_error"
    with pytest.raises(openai.APIStatusError) as info:
        _client(served.base_url).delete("/chat/completions", cast_to=object)
    assert info.value.status_code == 405


def test_invalid_json_is_400(served: ServedApp) -> None:
    response = httpx.post(
        served.base_url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    error = _assert_envelope(response.json(), 400)
    assert error["type"] == "invalid_request_error"
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"model": "gpt-5", "messages": []}, "messages"),
        ({"model": "gpt-5", "messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
def test_schema_errors_are_400_naming_the_param(served: ServedApp, kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        _client(served.base_url).post("/chat/completions", body=kwargs, cast_to=object)
    error = _assert_envelope(info.value.body, 400)
    assert error["param"] == param
    assert info.value.param == param  # type: ignore[attr-defined]


def test_body_over_limit_is_413(served: ServedApp) -> None:
    big = "x" * (70 * 1024)
    with pytest.raises(openai.APIStatusError) as info:
        _client(served.base_url).chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": big}])
    assert info.value.status_code == 413
    _assert_envelope(info.value.body, 413)


def test_body_over_limit_without_content_length_is_413(served: ServedApp) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"model": "gpt-5", "messages": [{"role": "user", "content": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'"}]}'

    response = httpx.post(served.base_url + "/v1/chat/completions", content=chunks())
    assert response.status_code == 413
    _assert_envelope(response.json(), 413)


def test_no_credentials_is_401_with_login_hint(unauthenticated: ServedApp, tmp_path: Path) -> None:
    with pytest.raises(openai.AuthenticationError) as info:
        _client(unauthenticated.base_url).chat.completions.create(
            model="gpt-5", messages=[{"role": "user", "content": "hi"}]
        )
    error = _assert_envelope(info.value.body, 401)
    assert "codexgate login" in str(error["message"])
    assert "auth.json" in str(error["message"])


def test_health_reports_version_and_credentials(served: ServedApp, unauthenticated: ServedApp) -> None:
    from codexgate import __version__

    body = httpx.get(served.base_url + "/health").json()
    assert body["version"] == __version__ and body["credentials"] is True
    assert httpx.get(unauthenticated.base_url + "/health").json()["credentials"] is False


def test_unexpected_exception_is_500_with_request_id_and_no_traceback(served: ServedApp) -> None:
    gateway_asgi = served.server.config.app
    assert isinstance(gateway_asgi, GatewayASGI)
    app = gateway_asgi.app  # the FastAPI app behind GatewayASGI

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret-token-value-should-not-leak")

    response = httpx.get(served.base_url + "/boom")
    assert response.status_code == 500
    error = _assert_envelope(response.json(), 500)
    request_id = response.headers["x-request-id"]
    assert request_id in str(error["message"])
    assert "secret-token-value" not in response.text and "Traceback" not in response.text
