"""Operations through the real server: usage rows, /metrics, API keys with the openai SDK."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam
from prometheus_client.parser import text_string_to_metric_families

from codexgate.storage.api_keys import KeyStore
from codexgate.storage.usage_db import UsageRecord, connect, fetch_records
from codexgate.testing import Scenario
from tests.conftest import Gateway

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "count"}]


def _rows(gateway: Gateway, expected: int) -> list[UsageRecord]:
    writer = gateway.app.state.gateway.usage_writer
    deadline = time.monotonic() + 5
    rows: list[UsageRecord] = []
    while time.monotonic() < deadline:
        assert writer.flush(5)
        conn = connect(gateway.settings.database_path)
        rows = fetch_records(conn)
        conn.close()
        if len(rows) >= expected:
            break
        time.sleep(0.05)
    return rows


def test_usage_rows_for_stream_non_stream_error_and_disconnect(gateway: Gateway) -> None:
    client = gateway.client()
    usage = {
        "input_tokens": 120,
        "input_tokens_details": {"cached_tokens": 20},
        "output_tokens": 7,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 127,
    }
    gateway.simulator.enqueue(Scenario("text", text="a b c", usage=usage))
    client.chat.completions.create(model="gpt-5-high", messages=MESSAGES)
    gateway.simulator.enqueue(Scenario("text", text="a b c", usage=usage))
    list(client.chat.completions.create(model="gpt-5", messages=MESSAGES, stream=True))
    gateway.simulator.enqueue(Scenario("http_400"))
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    gateway.simulator.enqueue(Scenario("text", text=" ".join(["w"] * 50), event_delay=0.05))
    with httpx.stream(
        "POST",
        gateway.base_url + "/v1/chat/completions",
        json={"model": "gpt-5", "messages": MESSAGES, "stream": True},
        timeout=10,
    ) as response:
        for line in response.iter_lines():
            if '"content"' in line:
                break
    rows = _rows(gateway, 4)
    assert len(rows) == 4
    non_stream, stream, error, disconnected = rows
    assert (non_stream.stream, stream.stream) == (False, True)
    for row in (non_stream, stream):
        assert row.status == 200 and row.error_code is None
        assert (row.input_tokens, row.cached_tokens, row.output_tokens, row.reasoning_tokens) == (120, 20, 7, 3)
        assert row.endpoint == "chat.completions" and row.upstream_request_id
        assert row.duration_ms is not None and row.duration_ms > 0
    assert non_stream.model_requested == "gpt-5-high" and non_stream.model_sent == "gpt-5"
    assert stream.ttft_ms is not None and stream.ttft_ms <= (stream.duration_ms or 0)
    assert error.status == 400 and error.error_code
    assert disconnected.status == 499 and disconnected.error_code == "client_disconnected"


def test_metrics_count_what_was_sent(gateway: Gateway) -> None:
    client = gateway.client()
    for _ in range(3):
        client.chat.completions.create(model="gpt-5", messages=MESSAGES)
    text = httpx.get(gateway.base_url + "/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert all(name.startswith("codexgate_") for name in families)
    requests = [
        sample
        for sample in families["codexgate_requests"].samples
        if sample.name == "codexgate_requests_total" and sample.labels.get("model") == "gpt-5"
    ]
    assert sum(sample.value for sample in requests) == 3
    assert "codexgate_active_streams" in families and "codexgate_build_info" in families
    tokens = {s.labels["kind"]: s.value for s in families["codexgate_tokens"].samples if s.name.endswith("_total")}
    assert tokens["input"] > 0 and tokens["output"] > 0


def _eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not true within {within} s"
        time.sleep(0.05)


def test_api_keys_take_effect_without_restart(gateway: Gateway) -> None:
    env = {**os.environ, "CODEXGATE_HOME": str(gateway.home)}
    created = subprocess.run(
        [sys.executable, "-m", "codexgate", "keys", "create", "--name", "ci"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    key = created.stdout.strip().splitlines()[-1]
    _eventually(lambda: httpx.get(gateway.base_url + "/metrics").status_code == 401)  # keys are re-read
    with pytest.raises(openai.AuthenticationError):
        gateway.client(api_key="wrong").chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert httpx.get(gateway.base_url + "/metrics").status_code == 401
    assert httpx.get(gateway.base_url + "/health").status_code == 200
    ok = gateway.client(api_key=key).chat.completions.create(model="gpt-5", messages=MESSAGES)
    assert ok.choices[0].message.content
    assert _rows(gateway, 1)[-1].key_name == "ci"
    assert KeyStore(gateway.settings.keys_file).revoke("ci")
    _eventually(lambda: httpx.get(gateway.base_url + "/metrics").status_code == 200)
    # no key left: a loopback gateway is open again
    gateway.client(api_key="anything").chat.completions.create(model="gpt-5", messages=MESSAGES)
