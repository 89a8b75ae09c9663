"""End-to-end overhead of the gateway against a direct connection to the same upstream, in one run.

    uv run python bench/bench_gateway.py            # full run (about two minutes on 2 cores)
    uv run python bench/bench_gateway.py --smoke    # seconds; what the test suite runs

Starts the upstream simulator and the gateway as separate processes on 127.0.0.1 — the gateway
pinned to CPU 0 with ``taskset``, the simulator and this client on CPU 1 — and measures, each
against the **direct** path (the same client reading the simulator's Responses stream), with a
fresh connection per request: added time to first token, streams/s and events/s at several
concurrencies, gateway CPU per 1,000 upstream events (from /proc), RSS per open stream and RSS
growth over many requests, the pure translation cost per event, and a paced load (2 ms between
events). Prints a table and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
TOKENS = 200
EVENTS_PER_STREAM = TOKENS + 9  # created, in_progress, item added, part added, deltas, done events, completed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def pinned(cpu: int, command: list[str]) -> list[str]:
    return ["taskset", "-c", str(cpu), *command] if shutil.which("taskset") else command


@dataclass
class Stack:
    simulator: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    sim_url: str
    gateway_url: str


def wait_http(url: str, deadline: float = 20.0) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1].split("/")[0])), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def stack(event_delay: float, home: Path) -> Iterator[Stack]:
    sim_port, gw_port = free_port(), free_port()
    python = sys.executable
    simulator = subprocess.Popen(
        pinned(
            1,
            [
                python,
                "-m",
                "codexgate.testing.simulator",
                "--port",
                str(sim_port),
                "--tokens",
                str(TOKENS),
                "--event-delay",
                str(event_delay),
            ],
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    env = {
        **os.environ,
        "CODEXGATE_HOME": str(home),
        "CODEX_HOME": str(home / "codex"),
        "CODEXGATE_UPSTREAM_URL": f"http://127.0.0.1:{sim_port}",
        "CODEXGATE_PORT": str(gw_port),
        "CODEXGATE_LOG_LEVEL": "warning",
        "CODEXGATE_MAX_CONCURRENT_STREAMS": "2000",
    }
    gateway = subprocess.Popen(
        pinned(0, [python, "-m", "codexgate", "serve"]), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}")
        wait_http(f"http://127.0.0.1:{gw_port}")
        yield Stack(simulator, gateway, f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{gw_port}")
    finally:
        for process in (gateway, simulator):
            process.send_signal(signal.SIGTERM)
        for process in (gateway, simulator):
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()


MESSAGES = [{"role": "user", "content": "benchmark prompt"}]
DIRECT_BODY = {
    "model": "gpt-5",
    "instructions": "x",
    "store": False,
    "stream": True,
    "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "benchmark prompt"}]}],
}
HEADERS = {"authorization": "Bearer bench", "content-type": "application/json"}


async def one_stream(session: aiohttp.ClientSession, url: str, direct: bool, prompt: str | None = None) -> float:
    """Seconds to the first answer token; reads the stream to its end."""
    if direct:
        body: dict[str, Any] = DIRECT_BODY
        target, marker = url + "/responses", b"output_text.delta"
    else:
        body = {
            "model": "gpt-5",
            "messages": [{"role": "user", "content": prompt}] if prompt else MESSAGES,
            "stream": True,
        }
        target, marker = url + "/v1/chat/completions", b'"content"'
    started = time.perf_counter()
    first = 0.0
    async with session.post(target, json=body, headers=HEADERS) as response:
        assert response.status == 200, response.status
        async for chunk in response.content.iter_any():
            if not first and marker in chunk:
                first = time.perf_counter() - started
    return first


def fresh_session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True, limit=limit), timeout=aiohttp.ClientTimeout(total=120)
    )


async def ttft(url: str, direct: bool, count: int) -> list[float]:
    async with fresh_session(1) as session:
        return [await one_stream(session, url, direct) for _ in range(count)]


async def throughput(url: str, direct: bool, concurrency: int, total: int) -> float:
    """Streams per second with ``concurrency`` streams in flight until ``total`` are done."""
    async with fresh_session(concurrency) as session:
        remaining = total

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one_stream(session, url, direct)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return total / (time.perf_counter() - started)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def measure(args: argparse.Namespace, home: Path) -> dict[str, Any]:
    smoke = args.smoke
    results: dict[str, Any] = {"smoke": smoke}
    n_ttft = 10 if smoke else 200
    with stack(0.0, home) as s:
        pid = s.gateway.pid
        await ttft(s.gateway_url, False, 5)  # warm-up
        direct = await ttft(s.sim_url, True, n_ttft)
        via = await ttft(s.gateway_url, False, n_ttft)
        results["ttft_added_p50_ms"] = (statistics.median(via) - statistics.median(direct)) * 1000
        results["ttft_added_p99_ms"] = (percentile(via, 99) - percentile(direct, 99)) * 1000
        for concurrency in (1, 50, 200):
            total = max(concurrency * (1 if smoke else 4), 10 if smoke else 100)
            direct_rate = await throughput(s.sim_url, True, concurrency, total)
            cpu_before = cpu_seconds(pid)
            gateway_rate = await throughput(s.gateway_url, False, concurrency, total)
            cpu = cpu_seconds(pid) - cpu_before
            results[f"c{concurrency}_direct_streams_per_s"] = direct_rate
            results[f"c{concurrency}_gateway_streams_per_s"] = gateway_rate
            results[f"c{concurrency}_ratio"] = gateway_rate / direct_rate
            results[f"c{concurrency}_gateway_events_per_s"] = gateway_rate * EVENTS_PER_STREAM
            results[f"c{concurrency}_cpu_s_per_1000_events"] = cpu / (total * EVENTS_PER_STREAM) * 1000
            results[f"c{concurrency}_cpu_ms_per_request"] = cpu / total * 1000
        # RSS growth over many requests (no leak)
        small, large = (50, 150) if smoke else (1000, 10000)
        done = 0
        async with fresh_session(50) as session:

            async def run(count: int) -> None:
                sem = asyncio.Semaphore(50)

                async def one() -> None:
                    async with sem:
                        await one_stream(session, s.gateway_url, False)

                await asyncio.gather(*(one() for _ in range(count)))

            await run(small)
            done = small
            rss_small = rss_bytes(pid)
            await run(large - done)
            rss_large = rss_bytes(pid)
        results["rss_after_small_mb"] = rss_small / 2**20
        results["rss_after_large_mb"] = rss_large / 2**20
        results["rss_growth_small_to_large_mb"] = (rss_large - rss_small) / 2**20
        # open slow streams at once: RSS per open stream
        slow = 20 if smoke else 500
        rss_idle = rss_bytes(pid)
        async with fresh_session(slow) as session:
            opened = 0
            all_open = asyncio.Event()

            async def slow_stream() -> None:
                nonlocal opened
                body = {
                    "model": "gpt-5",
                    "messages": [{"role": "user", "content": "scenario:stall_after"}],
                    "stream": True,
                }
                async with session.post(s.gateway_url + "/v1/chat/completions", json=body, headers=HEADERS):
                    opened += 1  # the gateway answered 200 and holds the upstream stream open
                    if opened == slow:
                        all_open.set()
                    await asyncio.sleep(30)

            tasks = [asyncio.create_task(slow_stream()) for _ in range(slow)]
            await asyncio.wait_for(all_open.wait(), 60)
            await asyncio.sleep(0.5)
            rss_open = rss_bytes(pid)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        results["open_streams"] = slow
        results["rss_per_open_stream_kb"] = (rss_open - rss_idle) / slow / 1024
    # paced load
    paced = 10 if smoke else 100
    with stack(0.002, home) as s:
        pid = s.gateway.pid
        direct = await asyncio.gather(*(ttft(s.sim_url, True, 1 if smoke else 3) for _ in range(paced)))
        cpu_before = cpu_seconds(pid)
        via = await asyncio.gather(*(ttft(s.gateway_url, False, 1 if smoke else 3) for _ in range(paced)))
        cpu = cpu_seconds(pid) - cpu_before
        direct_flat = [v for run in direct for v in run]
        via_flat = [v for run in via for v in run]
        results["paced_ttft_added_p50_ms"] = (statistics.median(via_flat) - statistics.median(direct_flat)) * 1000
        results["paced_ttft_added_p99_ms"] = (percentile(via_flat, 99) - percentile(direct_flat, 99)) * 1000
        results["paced_cpu_us_per_event"] = cpu / (len(via_flat) * EVENTS_PER_STREAM) * 1e6
    from bench.bench_translate import build_stream, reads
    from codexgate.protocol.sse_decoder import SSEDecoder
    from codexgate.protocol.sse_writer import encode_chunks
    from codexgate.protocol.stream_translator import ChatStreamTranslator

    data = build_stream()
    pieces = reads(data)
    started = time.perf_counter()
    deltas = 0
    for _ in range(3):
        decoder, translator = SSEDecoder(), ChatStreamTranslator(model="gpt-5", include_usage=True)
        for piece in pieces:
            events = decoder.feed(piece)
            deltas += sum(1 for e in events if str(e.get("type", "")).endswith(".delta"))
            encode_chunks([c for e in events for c in translator.feed(e)])
    results["translation_us_per_delta_event"] = (time.perf_counter() - started) / deltas * 1e6
    return results


TARGETS: list[tuple[str, str, str, float]] = [
    ("CPU per 1,000 upstream events (c=50)", "c50_cpu_s_per_1000_events", "<=", 0.010),
    ("added TTFT p50 (ms, c=1)", "ttft_added_p50_ms", "<", 1.0),
    ("added TTFT p99 (ms, c=1)", "ttft_added_p99_ms", "<", 5.0),
    ("streams/s vs direct, c=50", "c50_ratio", ">=", 0.9),
    ("streams/s vs direct, c=200", "c200_ratio", ">=", 0.9),
    ("RSS per open stream (KB)", "rss_per_open_stream_kb", "<", 40.0),
    ("RSS growth small→large run (MB)", "rss_growth_small_to_large_mb", "<", 5.0),
    ("translation per delta event (µs)", "translation_us_per_delta_event", "<", 5.0),
    ("paced: CPU per event (µs)", "paced_cpu_us_per_event", "<=", 25.0),
    ("paced: added TTFT p50 (ms)", "paced_ttft_added_p50_ms", "<", 5.0),
]


def report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title="codexgate overhead vs direct" + (" (smoke run: figures are indicative)" if results["smoke"] else "")
    )
    for column in ("measure", "target", "measured", "pass"):
        table.add_column(column)
    for label, key, op, target in TARGETS:
        value = float(results[key])
        ok = {"<": value < target, "<=": value <= target, ">=": value >= target}[op]
        table.add_row(label, f"{op} {target:g}", f"{value:.4g}", "yes" if ok else "NO")
    for key in sorted(results):
        if key.startswith("c") and key.endswith("streams_per_s"):
            table.add_row(key, "", f"{results[key]:.1f}", "")
    Console().print(table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run with few requests")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setaffinity(0, {1})
    from tests.helpers import write_auth_json

    with tempfile.TemporaryDirectory(prefix="codexgate-bench-") as tmp:
        home = Path(tmp)
        write_auth_json(home)
        results = asyncio.run(measure(args, home))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    report(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
