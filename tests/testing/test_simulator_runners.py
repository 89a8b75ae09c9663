"""The ways to run the simulator: async context manager, background thread, subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time

import aiohttp
import httpx

from codexgate.testing import Scenario, UpstreamSimulator, simulator_thread
from tests.testing.support import AUTH, check_stream, events_of, request_body


async def test_async_context_manager_with_aiohttp_client() -> None:
    async with UpstreamSimulator(tokens=20) as sim, aiohttp.ClientSession() as session:
        assert sim.base_url.startswith("http://127.0.0.1:") and sim.port > 0

        async def one() -> list[bytes]:
            async with session.post(sim.base_url + "/responses", json=request_body(), headers=AUTH) as response:
                return [chunk async for chunk in response.content.iter_any()]

        results = await asyncio.gather(*(one() for _ in range(20)))
        for chunks in results:
            summary = check_stream(events_of(b"".join(chunks)))
            assert summary.types.count("response.output_text.delta") == 20
    assert len(sim.requests) == 20


async def test_stop_frees_the_port_and_cancels_stalled_streams() -> None:
    sim = UpstreamSimulator()
    await sim.start()
    sim.enqueue(Scenario("stall_after", fault_after=1))
    url = sim.base_url + "/responses"
    async with httpx.AsyncClient() as client, client.stream("POST", url, json=request_body(), headers=AUTH) as r:
        assert r.status_code == 200
        started = time.monotonic()
        await sim.stop()
        assert time.monotonic() - started < 2
    assert sim.requests[-1].outcome == "stopped"


def test_thread_runner_takes_constructor_options() -> None:
    with simulator_thread(text="fixed answer", accepted_tokens={"test-token"}) as sim:
        response = httpx.post(sim.base_url + "/responses", json=request_body(), headers=AUTH)
        assert list(check_stream(events_of(response.content)).texts.values()) == ["fixed answer"]
    with simulator_thread() as again:
        assert again.base_url != ""


def test_subprocess_entry_point() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "codexgate.testing.simulator", "--port", "0", "--tokens", "3"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line
        base_url = line.strip().rsplit(" ", 1)[-1]
        models = httpx.get(base_url + "/models?client_version=1", headers=AUTH, timeout=5)
        assert models.status_code == 200 and models.json()["models"]
        stream = httpx.post(base_url + "/responses", json=request_body(), headers=AUTH, timeout=5)
        assert check_stream(events_of(stream.content)).types.count("response.output_text.delta") == 3
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _, stderr = process.communicate()
    assert "Traceback" not in stderr, stderr
