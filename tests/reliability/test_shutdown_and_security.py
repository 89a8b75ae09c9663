"""Graceful shutdown of a real `codexgate serve`, and the security promises (no leaks, no SSRF, 0600)."""

from __future__ import annotations

import functools
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import httpx
import pytest
from openai.types.chat import ChatCompletionContentPartParam

from codexgate.config import load_settings
from codexgate.storage.usage_db import connect, fetch_records
from codexgate.testing import Scenario, UpstreamSimulator
from tests.conftest import Gateway, start_gateway
from tests.fake_issuer import fake_issuer_thread
from tests.helpers import free_port, wait_until, write_auth_json


def _serve(home: Path, upstream: str, *extra: str) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    env = {**os.environ, "CODEXGATE_HOME": str(home), "CODEX_HOME": str(home / "codex")}
    process = subprocess.Popen(
        [sys.executable, "-m", "codexgate", "serve", "--port", str(port), "--upstream-url", upstream, *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/health", timeout=1)
            return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(process.communicate()[1])


def _arrived(simulator: UpstreamSimulator, count: int) -> bool:
    return len(simulator.responses_requests) == count


def _refused(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
    except httpx.TransportError:
        return True
    return False


@pytest.mark.slow
def test_sigterm_lets_streams_finish_then_ends_them_with_an_error(simulator: UpstreamSimulator, tmp_path: Path) -> None:
    home = tmp_path / "home"
    document = write_auth_json(home)
    process, base = _serve(home, simulator.base_url, "--shutdown-grace", "1", "--log-level", "debug")
    simulator.enqueue(Scenario("text", text="short", event_delay=0.05))  # finishes inside the grace period
    simulator.enqueue(Scenario("text", text=" ".join(["long"] * 60), event_delay=0.1))  # does not
    results: dict[str, str] = {}

    def read(name: str) -> None:
        body = {"model": "gpt-5", "messages": [{"role": "user", "content": name}], "stream": True}
        results[name] = httpx.post(base + "/v1/chat/completions", json=body, timeout=30).text

    threads = [threading.Thread(target=read, args=(name,)) for name in ("short", "long")]
    for number, thread in enumerate(threads, start=1):
        thread.start()  # one at a time: the simulator answers them in the order they arrive
        assert wait_until(functools.partial(_arrived, simulator, number), timeout=15)
    process.send_signal(signal.SIGTERM)
    assert wait_until(lambda: _refused(base + "/health"), timeout=10)  # no new connections while draining
    for thread in threads:
        thread.join(30)
    _out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert results["short"].rstrip().endswith("data: [DONE]")
    assert "server_shutting_down" in results["long"] and "[DONE]" not in results["long"]
    conn = connect(load_settings(flags={"home": str(home)}, env={}).settings.database_path)
    rows = fetch_records(conn)
    conn.close()
    assert len(rows) == 2 and {row.error_code for row in rows} == {None, "server_shutting_down"}
    tokens = document["tokens"]
    assert isinstance(tokens, dict)
    for name in ("access_token", "refresh_token", "id_token"):
        assert tokens[name] not in err  # debug logs of a whole session carry no token


@pytest.fixture
def canary() -> Iterator[tuple[str, list[str]]]:
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            return

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


def test_no_client_url_is_fetched_by_the_gateway(gateway: Gateway, canary: tuple[str, list[str]]) -> None:
    url, hits = canary
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"url": url + "/image.png"}},
    ]
    client = gateway.client()
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": content}])
    client.chat.completions.create(
        model="gpt-5",
        messages=[{"role": "user", "content": [{"type": "file", "file": {"file_id": "f", "filename": url}}]}],
    )
    time.sleep(0.2)
    assert hits == []
    sent = gateway.simulator.responses_requests[-2].json
    assert {"type": "input_image", "image_url": url + "/image.png"} in [
        {k: v for k, v in part.items() if k != "detail"} for part in sent["input"][0]["content"]
    ]


def test_files_are_private_and_config_show_has_no_secret(gateway: Gateway) -> None:
    client = gateway.client()
    client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "x"}])
    writer = gateway.app.state.gateway.usage_writer
    assert writer.flush(5)
    home = gateway.home
    assert stat.S_IMODE(gateway.settings.database_path.stat().st_mode) == 0o600
    result = subprocess.run(
        [sys.executable, "-m", "codexgate", "config", "show", "--json"],
        env={**os.environ, "CODEXGATE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    auth = json.loads((home / "auth.json").read_text())["tokens"]
    for value in auth.values():
        assert value not in result.stdout


def test_default_bind_is_loopback() -> None:
    assert load_settings(env={}).settings.server.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("issuer_refreshes", "status", "code"),
    [(True, 401, "invalid_credentials"), (False, 502, "auth_unreachable")],
    ids=["refreshed-then-refused-again", "issuer-unreachable"],
)
def test_error_bodies_carry_no_token(
    simulator: UpstreamSimulator, tmp_path: Path, issuer_refreshes: bool, status: int, code: str
) -> None:
    home = tmp_path / "home"
    with fake_issuer_thread() as issuer, socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: a connection to it is refused
        if issuer_refreshes:
            issuer.valid_refresh_tokens.add("rt_test_refresh_0")  # the refresh token write_auth_json puts in
            issuer_url = issuer.base_url
        else:
            issuer_url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        _settings, context = start_gateway(simulator, home, auth_issuer=issuer_url)
        with context as served:
            original = json.loads((home / "auth.json").read_text())["tokens"]
            simulator.enqueue(Scenario("http_401"), Scenario("http_401"))
            response = httpx.post(
                served.base_url + "/v1/chat/completions",
                json={"model": "gpt-5", "messages": [{"role": "user", "content": "x"}]},
                headers={"authorization": "Bearer sk-client-secret-value"},
                timeout=15,
            )
        # the backend refused the token; the one refresh either worked (and the backend refused the new
        # token too) or could not reach the issuer
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code and response.json()["error"]["message"]
        assert issuer.refresh_calls == (1 if issuer_refreshes else 0)
        assert len(simulator.responses_requests) == (2 if issuer_refreshes else 1)
        secrets = [*original.values(), "sk-client-secret-value"]
        secrets += [value for minted in issuer.issued for value in minted.values()]
        for value in secrets:
            assert value not in response.text
