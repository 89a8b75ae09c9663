"""Key budgets enforced by the running gateway, before anything goes upstream, in the envelope of the
API the client called: over budget 429 (with Retry-After), a model not allowed 403, an expired key 401;
a key revoked while the gateway runs is refused within a second."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import openai
import pytest

from codexgate.storage.api_keys import KeyStore
from codexgate.storage.key_limits import KeyLimits
from codexgate.testing import UpstreamSimulator
from tests.conftest import start_gateway
from tests.helpers import ServedApp, wait_until

HELLO: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def served(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[tuple[ServedApp, KeyStore]]:
    home = tmp_path / "home"
    home.mkdir(parents=True)
    store = KeyStore(home / "keys.json")
    _settings, context = start_gateway(simulator, home)
    with context as app:
        yield app, store


def _client(app: ServedApp, key: str) -> openai.OpenAI:
    """A client of ``key``, once the running gateway knows the key (it re-reads the keys file within a second)."""
    client = openai.OpenAI(base_url=app.base_url + "/v1", api_key=key, max_retries=0)

    def known() -> bool:
        try:
            client.models.list()
        except openai.AuthenticationError:
            return False
        return True

    assert wait_until(known, timeout=5)
    return client


def test_token_budget_refuses_the_next_request_with_retry_after(
    served: tuple[ServedApp, KeyStore], simulator: UpstreamSimulator
) -> None:
    app, store = served
    key = store.create("small", KeyLimits(tokens_per_day=1))
    client = _client(app, key)
    assert client.chat.completions.create(model="gpt-5", messages=HELLO).choices[0].message.content
    sent = len(simulator.responses_requests)
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt-5", messages=HELLO)
    error = refused.value.body
    assert isinstance(error, dict) and error["code"] == "budget_exceeded"
    retry_after = int(refused.value.response.headers["retry-after"])
    assert 0 < retry_after <= 24 * 3600
    assert len(simulator.responses_requests) == sent  # nothing went upstream


def test_model_not_allowed_and_expired_key(served: tuple[ServedApp, KeyStore], simulator: UpstreamSimulator) -> None:
    app, store = served
    only_codex = store.create("codex-only", KeyLimits(allowed_models=("gpt-5-codex*",)))
    with pytest.raises(openai.PermissionDeniedError) as forbidden:
        _client(app, only_codex).chat.completions.create(model="gpt-5", messages=HELLO)
    assert isinstance(forbidden.value.body, dict) and forbidden.value.body["code"] == "model_not_allowed"
    expired = store.create("old", KeyLimits(expires_at=time.time() - 60))
    with pytest.raises(openai.AuthenticationError) as unauthorized:
        _client(app, expired).chat.completions.create(model="gpt-5", messages=HELLO)
    assert isinstance(unauthorized.value.body, dict) and unauthorized.value.body["code"] == "key_expired"
    # the same refusal in Anthropic's envelope on the Messages API
    claude = anthropic.Anthropic(base_url=app.base_url, api_key=only_codex, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as anthropic_forbidden:
        claude.messages.create(model="gpt-5", max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    body = anthropic_forbidden.value.body
    assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == "permission_error"
    assert simulator.responses_requests == []


def test_a_key_revoked_while_running_is_refused_within_a_second(served: tuple[ServedApp, KeyStore]) -> None:
    app, store = served
    store.create("stays")  # with no key left, a loopback gateway would be open again
    key = store.create("temporary")
    client = _client(app, key)
    assert client.chat.completions.create(model="gpt-5", messages=HELLO).choices
    store.revoke("temporary")
    revoked_at = time.monotonic()

    def refused() -> bool:
        try:
            client.models.list()
        except openai.AuthenticationError:
            return True
        return False

    assert wait_until(refused, timeout=5)
    assert time.monotonic() - revoked_at < 2.5  # within the second the gateway re-reads its keys, with a margin
