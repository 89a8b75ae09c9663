"""1,000 concurrent streams with no error and no leak; fuzzed bodies never give a 5xx or a bare error."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from codexgate.testing import UpstreamSimulator
from tests.conftest import Gateway
from tests.helpers import wait_until

MESSAGES = [{"role": "user", "content": "load"}]


def connections_to(port: int) -> int:
    """Established loopback TCP connections to ``port`` (as the kernel lists them, client ends only)."""
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:  # 01: ESTABLISHED
                    count += 1
    return count


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _one(session: aiohttp.ClientSession, url: str) -> str:
    body = {"model": "gpt-5", "messages": MESSAGES, "stream": True}
    async with session.post(url, json=body) as response:
        assert response.status == 200, response.status
        text = (await response.read()).decode()
    return text


@pytest.mark.slow
def test_1000_concurrent_streams_without_errors_or_leaks(gateway: Gateway) -> None:
    simulator: UpstreamSimulator = gateway.simulator
    simulator.tokens = 20
    url = gateway.base_url + "/v1/chat/completions"

    async def burst(count: int) -> list[Any]:
        connector = aiohttp.TCPConnector(limit=0, force_close=True)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=90)) as session:
            return await asyncio.gather(*(_one(session, url) for _ in range(count)), return_exceptions=True)

    asyncio.run(burst(20))  # warm-up: pools and caches
    counts = [open_fds()]

    def fds_steady() -> bool:  # the warm-up's connections have closed
        counts.append(open_fds())
        return counts[-1] == counts[-2]

    assert wait_until(fds_steady, timeout=10, interval=0.1)
    gc.collect()
    baseline_fds = open_fds()
    started = time.monotonic()
    results = asyncio.run(burst(1000))
    elapsed = time.monotonic() - started
    errors = [r for r in results if isinstance(r, BaseException) or "[DONE]" not in r]
    assert not errors, errors[:3]
    assert all('"finish_reason":"stop"' in r for r in results if isinstance(r, str))
    print(f"1000 concurrent streams in {elapsed:.1f} s")
    # Everything returns to its baseline. This process holds the client, the gateway and the simulator,
    # so each upstream connection the gateway keeps for reuse shows as two fds (both ends): idle
    # keep-alive connections are allowed; every answer is over and every slot given back.
    upstream_port = int(simulator.base_url.rsplit(":", 1)[1])

    def settled() -> bool:
        return open_fds() <= baseline_fds + 10 + 2 * connections_to(upstream_port)

    assert wait_until(settled, timeout=10, interval=0.2), (baseline_fds, open_fds(), connections_to(upstream_port))
    assert connections_to(upstream_port) <= 1000
    assert {r.outcome for r in simulator.responses_requests} == {"completed"}
    assert gateway.app.state.gateway.limiter.active == 0
    health = httpx.get(gateway.base_url + "/health").json()
    assert health["active_streams"] == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
chat_like = st.fixed_dictionaries(
    {},
    optional={
        "model": st.one_of(st.just("gpt-5"), json_values),
        "messages": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "role": st.sampled_from(["user", "system", "assistant", "tool", "x"]),
                        "content": json_values,
                    },
                ),
                max_size=3,
            ),
            json_values,
        ),
        "stream": json_values,
        "tools": json_values,
        "tool_choice": json_values,
        "response_format": json_values,
        "n": json_values,
        "stream_options": json_values,
        "reasoning_effort": json_values,
    },
)


def test_fuzzed_bodies_never_5xx_and_always_the_envelope(gateway: Gateway, tmp_path: Path) -> None:
    client = httpx.Client(base_url=gateway.base_url, timeout=15)
    cases = 0

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(body=chat_like, path=st.sampled_from(["/v1/chat/completions", "/chat/completions", "/v1/responses"]))
    def check(body: dict[str, Any], path: str) -> None:
        nonlocal cases
        cases += 1
        if path.endswith("responses") and "messages" in body:
            body = {**body, "input": body.pop("messages")}
        response = client.post(path, json=body)
        assert response.status_code < 500, (body, response.text)
        if response.status_code >= 400:
            error = response.json()["error"]
            assert set(error) == {"message", "type", "param", "code"} and error["message"]

    check()
    client.close()
    print(f"{cases} fuzzed requests")
    assert cases >= 100
