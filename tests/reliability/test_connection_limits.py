"""Hostile clients on loopback against the connection guard (issue 20 items 3 and 4).

A real uvicorn (uvloop, as ``codexgate serve`` runs) serves the real app with the guarded protocol
class; the upstream is the simulator. The clients are raw sockets: a 40 MB header, a head dribbled a
byte at a time, a socket that never sends, a body at 1 byte/s, more connections than the cap. Each
attack is bounded by the server, not by the test: every read here has a timeout well above the limit
under test, so a server without the guard fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from codexgate.server.app import create_app
from codexgate.server.connection_guard import (
    ConnectionLimits,
    default_max_connections,
    guarded_protocol,
    raise_fd_limit,
)
from codexgate.testing import simulator_thread
from tests.helpers import settings_for, write_auth_json

HEAD_LIMIT = 64 * 1024


class ParserFeedRecorder(HttpToolsProtocol):
    """Sits under the guard (above uvicorn's parser feed): records what each connection's parser was fed."""

    fed: ClassVar[dict[int, int]] = {}

    def data_received(self, data: bytes) -> None:
        self.fed[id(self)] = self.fed.get(id(self), 0) + len(data)
        super().data_received(data)


@contextmanager
def guarded_gateway(tmp_path: Path, limits: ConnectionLimits) -> Iterator[tuple[str, int, uvicorn.Server]]:
    """The app behind the guard on an ephemeral loopback port, in front of the simulator."""
    guarded = guarded_protocol(limits)
    protocol = type("RecordedGuardedProtocol", (guarded, ParserFeedRecorder), {})
    with simulator_thread() as simulator:
        home = tmp_path / "home"
        write_auth_json(home)
        settings = settings_for(home, simulator.base_url)
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=0,
            loop="uvloop",
            http=protocol,
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_keep_alive=5,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
        thread.start()
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
            time.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield "127.0.0.1", port, server
        finally:
            server.should_exit = True
            thread.join(timeout=10)


LIMITS = ConnectionLimits(
    max_header_size=HEAD_LIMIT, head_timeout=1.0, body_grace=1.0, body_min_rate=1024, max_connections=200
)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    with guarded_gateway(tmp_path_factory.mktemp("guard"), LIMITS) as (host, port, _):
        yield host, port


def connect(address: tuple[str, int], timeout: float = 5.0) -> socket.socket:
    sock = socket.create_connection(address, timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_until_closed(sock: socket.socket, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (a reset after its answer counts as a close)."""
    received = b""
    while len(received) < limit:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received


def parse_answer(raw: bytes) -> tuple[int, dict[str, str], Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


def assert_envelope(document: Any, code: str, error_type: str) -> None:
    assert set(document) == {"error"}
    error = document["error"]
    assert error["code"] == code and error["type"] == error_type and error["param"] is None
    assert isinstance(error["message"], str) and error["message"]


def chat_body(content: str) -> bytes:
    return json.dumps({"model": "gpt-5", "messages": [{"role": "user", "content": content}]}).encode()


def test_a_40_mb_header_gets_431_after_the_limit_while_health_answers(gateway: tuple[str, int]) -> None:
    ParserFeedRecorder.fed.clear()
    sock = connect(gateway)
    sent = [0]

    def send_header() -> None:
        piece = b"a" * 65536
        try:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: ")
            while sent[0] < 40 * 1024 * 1024:
                sock.sendall(piece)
                sent[0] += len(piece)
        except OSError:
            pass  # the server closed: what the test expects

    sender = threading.Thread(target=send_header, daemon=True)
    started = time.monotonic()
    sender.start()
    health_started = time.monotonic()
    health = httpx.get(f"http://{gateway[0]}:{gateway[1]}/health", timeout=5)
    health_time = time.monotonic() - health_started
    raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    sender.join(timeout=5)
    sock.close()

    assert health.status_code == 200 and health_time < 2.0
    status, headers, document = parse_answer(raw)
    assert status == 431 and headers["connection"] == "close"
    assert_envelope(document, "request_header_fields_too_large", "invalid_request_error")
    assert elapsed < 5.0
    assert sent[0] < 40 * 1024 * 1024  # the client was stopped, not read to the end
    # the parser saw no more of the head than the limit (the guard's own fresh connection is the largest)
    assert max(ParserFeedRecorder.fed.values()) <= HEAD_LIMIT


def test_a_head_dribbled_a_byte_at_a_time_is_cut_after_the_head_timeout(gateway: tuple[str, int]) -> None:
    head = b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nuser-agent: slowloris-" + b"z" * 40 + b"\r\n\r\n"
    sock = connect(gateway)
    stop = threading.Event()

    def dribble() -> None:  # the whole head would take over 20 s at this pace
        for byte in head:
            if stop.wait(0.2):
                return
            try:
                sock.send(bytes([byte]))
            except OSError:
                return

    sender = threading.Thread(target=dribble, daemon=True)
    started = time.monotonic()
    sender.start()
    raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    stop.set()
    sender.join(timeout=2)
    sock.close()
    status, _, document = parse_answer(raw)
    assert status == 408
    assert_envelope(document, "request_timeout", "timeout_error")
    assert 0.8 <= elapsed < 3.5


def test_a_connection_that_never_sends_is_closed_after_the_head_timeout(gateway: tuple[str, int]) -> None:
    sock = connect(gateway)
    started = time.monotonic()
    raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    sock.close()
    assert raw == b""  # nothing had begun: closed without an answer
    assert 0.8 <= elapsed < 3.5


def post_head(length: int) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(length).encode() + b"\r\n\r\n"
    )


@pytest.mark.parametrize("pipelined", [False, True], ids=["alone", "pipelined-after-a-body"])
def test_a_body_at_one_byte_per_second_is_cut(gateway: tuple[str, int], pipelined: bool) -> None:
    body = chat_body("slow")
    sock = connect(gateway)
    if pipelined:  # the slow request's head arrives in the same read as the end of a body before it
        first = chat_body("first")
        sock.sendall(post_head(len(first)))
        time.sleep(0.05)
        sock.sendall(first + post_head(len(body)))
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        assert response.status == 200
    else:
        sock.sendall(post_head(len(body)))
    stop = threading.Event()

    def trickle() -> None:
        for byte in body:
            try:
                sock.send(bytes([byte]))
            except OSError:
                return
            if stop.wait(1.0):
                return

    sender = threading.Thread(target=trickle, daemon=True)
    started = time.monotonic()
    sender.start()
    raw = read_until_closed(sock)
    elapsed = time.monotonic() - started
    stop.set()
    sender.join(timeout=2)
    sock.close()
    status, _, document = parse_answer(raw)
    assert status == 408
    assert_envelope(document, "request_timeout", "timeout_error")
    assert 0.8 <= elapsed < 4.0  # the grace is 1 s; the body would take over a minute


def test_a_2_mb_body_at_a_decent_rate_is_accepted(gateway: tuple[str, int]) -> None:
    body = chat_body("x" * (2 * 1024 * 1024))
    sock = connect(gateway, timeout=10)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    started = time.monotonic()
    piece = 64 * 1024
    for offset in range(0, len(body), piece):  # 33 pieces over about 1.6 s: past the 1 s grace
        sock.sendall(body[offset : offset + piece])
        time.sleep(0.05)
    assert time.monotonic() - started > LIMITS.body_grace  # the rate rule was in force
    response = http.client.HTTPResponse(sock)
    response.begin()
    answer = json.loads(response.read())
    sock.close()
    assert response.status == 200, answer
    assert answer["object"] == "chat.completion"


def test_over_the_connection_cap_a_connection_gets_503_and_later_ones_are_served(tmp_path: Path) -> None:
    limits = ConnectionLimits(max_header_size=HEAD_LIMIT, max_connections=5)
    with guarded_gateway(tmp_path, limits) as (host, port, server):
        idle = []
        for _ in range(5):  # five keep-alive connections, each served once and left idle
            sock = connect((host, port))
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            response = http.client.HTTPResponse(sock)
            response.begin()
            response.read()
            assert response.status == 200
            idle.append(sock)

        extra = connect((host, port))
        extra.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        raw = read_until_closed(extra)  # closed at once: this read ends
        extra.close()
        status, headers, document = parse_answer(raw)
        assert status == 503 and headers["retry-after"] == "1" and headers["connection"] == "close"
        assert_envelope(document, "too_many_connections", "server_error")

        for sock in idle:
            sock.close()
        deadline = time.monotonic() + 3
        while server.server_state.connections and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not server.server_state.connections
        health = httpx.get(f"http://{host}:{port}/health", timeout=5)
        assert health.status_code == 200


def test_an_idle_keep_alive_connection_outlives_the_head_timeout_and_is_served_again(gateway: tuple[str, int]) -> None:
    sock = connect(gateway)
    for round_number in range(2):
        if round_number:
            time.sleep(LIMITS.head_timeout + 0.5)  # idle after an answer: uvicorn's keep-alive timeout (5 s) rules
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\n")  # the head in two pieces
        time.sleep(0.05)
        sock.sendall(b"x-round: " + str(round_number).encode() + b"\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()
        response.read()
        assert response.status == 200
    sock.close()


def test_a_head_and_a_large_body_in_one_write_are_served(gateway: tuple[str, int]) -> None:
    body = chat_body("y" * (300 * 1024))  # the first read holds the head and more than the head limit of body
    sock = connect(gateway)
    sock.sendall(post_head(len(body)) + body)
    response = http.client.HTTPResponse(sock)
    response.begin()
    answer = json.loads(response.read())
    assert response.status == 200, answer
    # on the same keep-alive connection, an oversized head sent at once is refused as well
    sock.sendall(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-padding: " + b"p" * (2 * HEAD_LIMIT) + b"\r\n\r\n")
    status, _, document = parse_answer(read_until_closed(sock))
    sock.close()
    assert status == 431
    assert_envelope(document, "request_header_fields_too_large", "invalid_request_error")


def test_the_fd_soft_limit_is_raised_where_allowed_and_the_default_cap_stays_below_it() -> None:
    original, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowered = 512
    if hard != resource.RLIM_INFINITY and hard <= lowered:
        pytest.fail(f"the hard fd limit ({hard}) leaves nothing to raise towards")
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowered, hard))
    try:
        assert ConnectionLimits().max_connections == (lowered - 64) // 2  # below the fd limit, with room
        soft = raise_fd_limit()
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == soft > lowered
        assert hard == resource.RLIM_INFINITY or soft <= hard
        cap = ConnectionLimits().max_connections
        assert 16 <= cap <= 1024 and cap < soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(original, resource.getrlimit(resource.RLIMIT_NOFILE)[0]), hard))


def test_connection_limits_come_from_the_settings(tmp_path: Path) -> None:
    from codexgate.config import load_settings
    from codexgate.server.runner import connection_limits

    flags = {"home": str(tmp_path), "head_timeout": 3, "body_min_rate": 1000, "body_grace": 2, "max_connections": 7}
    limits = connection_limits(load_settings(flags=flags, env={}).settings)
    assert (limits.head_timeout, limits.body_min_rate, limits.body_grace, limits.max_connections) == (3, 1000, 2, 7)
    automatic = connection_limits(load_settings(flags={"home": str(tmp_path)}, env={}).settings)
    assert automatic.max_connections == default_max_connections() > 0
