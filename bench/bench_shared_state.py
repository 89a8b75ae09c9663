"""What the shared state costs a request end to end: one gateway with ``state_url`` (Redis on loopback) vs embedded.

Run: ``uv run python bench/bench_shared_state.py [--requests 400] [--smoke] [--json] [--out PATH]``.

It starts the simulator, a ``redis-server`` (tests/services.py) and two ``codexgate serve`` processes on
127.0.0.1 — one embedded (no ``state_url``), one with ``state_url`` at that Redis and a ``secret_key`` — each
with the same single account, in a throw-away home of its own. On a machine with two cores the gateways
are pinned to CPU 0, and the simulator, Redis and this client to CPU 1 ("Redis on its own core": not the
gateway's). Both gateways run at once but only one is ever busy: the client streams one chat completion
(200 tokens) at a time, alternating between them, a fresh connection each, so that a drift of the machine
(other work, frequency) falls on both alike.

It prints, for each gateway, the time to first token (p50 / p99, from the client's connect to the first
content chunk) and the gateway's CPU per request (its ``/proc`` CPU time over the run, divided by the
requests), and the difference: what ``state_url`` adds. The issue's target: under 0.3 ms of TTFT, through
the local caches.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import probe  # noqa: E402
from bench.processes import (  # noqa: E402
    CLIENT_CPU,
    GATEWAY_CPU,
    can_pin,
    cpu_seconds,
    gateway_env,
    pin_self,
    spawn,
    stop,
    wait_announced,
    wait_listening,
)
from codexgate.testing.ports import free_port  # noqa: E402
from tests.services import RedisServer  # noqa: E402

TARGET_ADDED_TTFT_MS = 0.3
TOKENS = 200
GATEWAY_MARKER = b'"content"'
WARM_UP = 20


@dataclass
class Gateway:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    target: probe.Target


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * (len(ordered) - 1))))]


def chat_target(port: int) -> probe.Target:
    body = {"model": "gpt-5", "messages": [{"role": "user", "content": "shared state bench"}], "stream": True}
    headers = {"content-type": "application/json", "accept": "text/event-stream"}
    return probe.Target.post("gateway", port, "/v1/chat/completions", body, headers, GATEWAY_MARKER)


@contextlib.contextmanager
def running(directory: Path) -> Iterator[tuple[Gateway, Gateway]]:
    """The simulator, Redis and the two gateways (embedded, shared); everything stopped on the way out."""
    from tests.helpers import write_auth_json

    processes: list[subprocess.Popen[bytes]] = []
    prefix = ["taskset", "-c", str(CLIENT_CPU)] if can_pin() else []
    redis = RedisServer(directory / "redis", command_prefix=prefix)
    try:
        redis.start()
        sim_log = directory / "simulator.log"
        command = [sys.executable, "-m", "codexgate.testing.simulator", "--port", "0", "--tokens", str(TOKENS)]
        processes.append(spawn(command, CLIENT_CPU, sim_log))
        sim_port = wait_announced(processes[0], sim_log, 0)
        gateways = []
        for name in ("embedded", "shared"):
            home = directory / name
            write_auth_json(home)
            port = free_port()
            env = gateway_env(home, sim_port, port)
            env["CODEXGATE_LOG_LEVEL"] = "warning"
            if name == "shared":
                env |= {"CODEXGATE_STATE_URL": redis.url, "CODEXGATE_SECRET_KEY": secrets.token_urlsafe(32)}
            log = directory / f"{name}.log"
            process = spawn([sys.executable, "-m", "codexgate", "serve"], GATEWAY_CPU, log, env)
            processes.append(process)
            wait_listening(port, process, f"{name} gateway", log)
            gateways.append(Gateway(name, process, port, chat_target(port)))
        yield gateways[0], gateways[1]
    finally:
        stop(processes[::-1])
        redis.stop()


async def measure(embedded: Gateway, shared: Gateway, requests: int) -> dict[str, Any]:
    for _ in range(WARM_UP):  # imports on first use, connection pools, caches filled
        await probe.stream_once(embedded.target)
        await probe.stream_once(shared.target)
    ttfts: dict[str, list[float]] = {"embedded": [], "shared": []}
    cpu = {"embedded": 0.0, "shared": 0.0}
    for index in range(requests):
        order = (embedded, shared) if index % 2 == 0 else (shared, embedded)
        for gateway in order:
            before = cpu_seconds(gateway.process.pid)
            ttfts[gateway.name].append(await probe.stream_once(gateway.target))
            cpu[gateway.name] += cpu_seconds(gateway.process.pid) - before
    figures: dict[str, Any] = {"requests": requests}
    for name in ("embedded", "shared"):
        figures[name] = {
            "ttft_p50_ms": percentile(ttfts[name], 50) * 1000,
            "ttft_p99_ms": percentile(ttfts[name], 99) * 1000,
            "cpu_ms_per_request": cpu[name] / requests * 1000,
        }
    figures["added_ttft_p50_ms"] = figures["shared"]["ttft_p50_ms"] - figures["embedded"]["ttft_p50_ms"]
    figures["added_ttft_p99_ms"] = figures["shared"]["ttft_p99_ms"] - figures["embedded"]["ttft_p99_ms"]
    figures["added_cpu_ms_per_request"] = (
        figures["shared"]["cpu_ms_per_request"] - figures["embedded"]["cpu_ms_per_request"]
    )
    return figures


def report(figures: dict[str, Any]) -> None:
    print(f"shared state (Redis on loopback) vs embedded, {figures['requests']} requests each, one at a time")
    print(f"{'gateway':<10} {'TTFT p50 ms':>12} {'TTFT p99 ms':>12} {'CPU ms/request':>15}")
    for name in ("embedded", "shared"):
        row = figures[name]
        print(f"{name:<10} {row['ttft_p50_ms']:>12.3f} {row['ttft_p99_ms']:>12.3f} {row['cpu_ms_per_request']:>15.3f}")
    verdict = "meets" if figures["added_ttft_p50_ms"] < TARGET_ADDED_TTFT_MS else "misses"
    print(
        f"added by state_url: TTFT p50 {figures['added_ttft_p50_ms']:+.3f} ms (target < {TARGET_ADDED_TTFT_MS} ms: "
        f"{verdict}), p99 {figures['added_ttft_p99_ms']:+.3f} ms, CPU {figures['added_cpu_ms_per_request']:+.3f} ms "
        "per request"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=400, help="requests to each gateway (default 400)")
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run (30 requests each)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON after the table")
    parser.add_argument("--out", type=Path, default=None, help="write the figures as JSON to this file")
    args = parser.parse_args()
    requests = 30 if args.smoke else args.requests
    if can_pin():
        pin_self()
    else:
        print("note: taskset (or a second CPU) is missing; the processes are not pinned to cores", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codexgate-bench-state-") as tmp, running(Path(tmp)) as (emb, shared):
        figures = asyncio.run(measure(emb, shared, requests))
    figures["meta"] = {"pinned": can_pin(), "cpus": os.cpu_count(), "seconds": round(time.monotonic() - started, 1)}
    report(figures)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    if args.json:
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
