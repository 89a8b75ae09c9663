"""End-to-end overhead of the gateway against a direct connection to the same upstream, in one run.

    uv run python bench/bench_gateway.py            # full run (about a minute and a half on 2 cores)
    uv run python bench/bench_gateway.py --smoke    # seconds; what the test suite runs

Starts the upstream simulator and the gateway as separate processes on 127.0.0.1 — the gateway
pinned to CPU 0 with ``taskset``, the simulator and this client to CPU 1 — and measures, each
against the **direct** path (the same client reading the simulator's Responses stream with the body
the gateway would send), with a fresh connection per request:

1. added time to first token, p50/p99, over sequential requests (direct and gateway interleaved);
2. streams/s and events/s at concurrency 1, 50 and 200 (200-token answers, no upstream delay), and
   the time to first token at each concurrency;
3. gateway CPU seconds per 1,000 upstream events and per request (``/proc/<pid>/stat``);
4. RSS per open stream (slow streams held open at once) and RSS after 10,000 requests vs 1,000;
5. the pure translation cost per delta event (decoder + translator + writer, no HTTP);
6. paced load: 100 concurrent streams with 2 ms between upstream events, twice: started together
   (the setups of 100 requests at once), and in a steady state, each of 100 workers streaming one
   answer after another with the starts spread over one answer's length, as a real model's streams
   are (only there is a time to first token a latency, not the length of a queue of setups).

Prints a table (target / measured / pass) and writes JSON (``--out``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import platform
import resource
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import uvloop

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import probe  # noqa: E402
from bench.processes import Stack, can_pin, cpu_seconds, pin_self, rss_bytes, running_stack  # noqa: E402

TOKENS = 200
PROMPT = "benchmark prompt"
DIRECT_MARKER = b"output_text.delta"
GATEWAY_MARKER = b'"content"'


WARM_UP = 10  # sequential requests on each path before the first measurement


@dataclass(frozen=True)
class Plan:
    ttft_requests: int
    burst_requests: dict[int, int]  # concurrency -> requests per path
    burst_rounds: int  # direct then gateway, this many times (drift hits both alike)
    rss_small: int
    rss_large: int
    open_streams: int
    paced_streams: int
    paced_rounds: int
    paced_steady_rounds: int
    paced_delay: float  # seconds between upstream events in the paced parts
    translation_repeat: int
    time_limit: float


FULL = Plan(
    ttft_requests=200,
    burst_requests={1: 300, 50: 1500, 200: 2000},
    burst_rounds=2,
    rss_small=1_000,
    rss_large=10_000,
    open_streams=500,
    paced_streams=100,
    paced_rounds=4,
    paced_steady_rounds=4,
    paced_delay=0.002,
    translation_repeat=5,
    time_limit=600,
)
SMOKE = Plan(
    ttft_requests=6,
    burst_requests={1: 4, 50: 50, 200: 200},
    burst_rounds=1,
    rss_small=20,
    rss_large=60,
    open_streams=20,
    paced_streams=10,
    paced_rounds=1,
    paced_steady_rounds=1,
    paced_delay=0.002,
    translation_repeat=1,
    time_limit=90,
)


# ---- the two paths -------------------------------------------------------------------------------
def chat_body(prompt: str = PROMPT) -> dict[str, Any]:
    return {"model": "gpt-5", "messages": [{"role": "user", "content": prompt}], "stream": True}


def upstream_request(stack: Stack, prompt: str = PROMPT) -> tuple[dict[str, Any], dict[str, str]]:
    """The body and headers the gateway sends upstream for :func:`chat_body` (its own code path)."""
    from codexgate.auth.credentials import credentials_from, read_document
    from codexgate.config import load_settings
    from codexgate.protocol.chat_to_responses import map_chat_request
    from codexgate.upstream.headers import upstream_headers
    from codexgate.upstream.instructions import resolve_instructions
    from codexgate.upstream.session import session_and_cache_key
    from codexgate.upstream.shaping import shape_for_codex

    settings = load_settings(env=stack.gateway_env).settings
    shaped = shape_for_codex(
        map_chat_request(chat_body(prompt)).body,
        default_instructions=lambda model: resolve_instructions(settings, model),
        reasoning_summary=settings.translation.reasoning_summary,
    ).body
    session_id, cache_key = session_and_cache_key(shaped, {})
    shaped["prompt_cache_key"] = cache_key
    document = read_document(settings.auth_file)
    credentials = credentials_from(document or {}, settings.auth_file)
    if credentials is None:
        raise RuntimeError(f"no usable credentials in {settings.auth_file}")
    headers = upstream_headers(
        access_token=credentials.access_token,
        account_id=credentials.account_id,
        session_id=session_id,
        originator=settings.upstream.originator,
        client_version=settings.upstream.client_version,
        request_id="req_bench",
    )
    return shaped, headers


def targets(stack: Stack, prompt: str = PROMPT) -> tuple[probe.Target, probe.Target]:
    """(direct, gateway) for the same conversation."""
    body, headers = upstream_request(stack, prompt)
    direct = probe.Target.post("direct", stack.sim_port, "/responses", body, headers, DIRECT_MARKER)
    json_headers = {"content-type": "application/json", "accept": "text/event-stream"}
    gateway = probe.Target.post(
        "gateway", stack.gateway_port, "/v1/chat/completions", chat_body(prompt), json_headers, GATEWAY_MARKER
    )
    return direct, gateway


async def events_per_stream(direct: probe.Target) -> int:
    """Upstream events in one answer, counted on the wire."""
    reader, writer = await asyncio.open_connection(probe.HOST, direct.port)
    writer.write(direct.request)
    data = await asyncio.wait_for(reader.read(-1), probe.REQUEST_TIMEOUT)
    writer.close()
    return data.count(b"\ndata: ")


# ---- statistics ----------------------------------------------------------------------------------
def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def added_ms(via: list[float], direct: list[float], p: float) -> float:
    return (percentile(via, p) - percentile(direct, p)) * 1000


# ---- the measurements ----------------------------------------------------------------------------
async def measure_ttft(
    results: dict[str, Any], stack: Stack, direct: probe.Target, gateway: probe.Target, n: int
) -> None:
    d: list[float] = []
    g: list[float] = []
    for _ in range(n):  # interleaved, so drift in the machine's load hits both paths alike
        d.append(await probe.stream_once(direct))
        g.append(await probe.stream_once(gateway))
    results["ttft_direct_p50_ms"] = percentile(d, 50) * 1000
    results["ttft_gateway_p50_ms"] = percentile(g, 50) * 1000
    results["ttft_added_p50_ms"] = added_ms(g, d, 50)
    results["ttft_added_p99_ms"] = added_ms(g, d, 99)
    # The gateway's own record of the same requests (usage rows: from reading the request to sending
    # its first token, upstream time included) less the direct time to first token: what the gateway
    # adds before the bytes are the client's to pick up.
    recorded = await recorded_ttfts(stack, n, rows=WARM_UP + n)
    if recorded:
        results["ttft_gateway_recorded_p50_ms"] = percentile(recorded, 50)
        results["ttft_recorded_added_p50_ms"] = percentile(recorded, 50) - percentile(d, 50) * 1000


async def recorded_ttfts(stack: Stack, n: int, *, rows: int, timeout: float = 5.0) -> list[float]:
    """``ttft_ms`` of the gateway's last ``n`` requests, once its usage writer has written ``rows`` rows."""
    deadline = time.monotonic() + timeout
    while usage_rows(stack) < rows and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    return gateway_ttfts(stack, n)


def usage_rows(stack: Stack) -> int:
    rows = query_usage(stack, "SELECT count(*) FROM usage")
    return int(rows[0][0]) if rows else 0


def gateway_ttfts(stack: Stack, n: int) -> list[float]:
    """``ttft_ms`` of the gateway's last ``n`` usage rows."""
    rows = query_usage(stack, "SELECT ttft_ms FROM usage WHERE ttft_ms IS NOT NULL ORDER BY id DESC LIMIT ?", n)
    return [float(value) for (value,) in rows]


def query_usage(stack: Stack, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """The rows of a read-only query of the gateway's usage database (none before the file exists)."""
    path = Path(stack.gateway_env["CODEXGATE_HOME"]) / "usage.db"
    if not path.exists():
        return []
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
        return list(db.execute(sql, params))


async def measure_bursts(
    results: dict[str, Any], stack: Stack, direct: probe.Target, gateway: probe.Target, plan: Plan, events: int
) -> None:
    pid = stack.gateway_pid
    for concurrency, total in plan.burst_requests.items():
        elapsed = {"direct": 0.0, "gateway": 0.0}
        ttfts: dict[str, list[float]] = {"direct": [], "gateway": []}
        cpu = 0.0
        half = max(total // plan.burst_rounds, concurrency)
        for _round in range(plan.burst_rounds):  # direct, gateway, direct, gateway: drift hits both alike
            for target in (direct, gateway):
                before = cpu_seconds(pid)
                seconds, firsts = await probe.burst(target, concurrency, half)
                if target is gateway:
                    cpu += cpu_seconds(pid) - before
                elapsed[target.name] += seconds
                ttfts[target.name] += firsts
        done = plan.burst_rounds * half
        direct_rate, gateway_rate = done / elapsed["direct"], done / elapsed["gateway"]
        prefix = f"c{concurrency}_"
        results[prefix + "requests"] = done
        results[prefix + "direct_streams_per_s"] = direct_rate
        results[prefix + "gateway_streams_per_s"] = gateway_rate
        results[prefix + "ratio"] = gateway_rate / direct_rate
        results[prefix + "direct_events_per_s"] = direct_rate * events
        results[prefix + "gateway_events_per_s"] = gateway_rate * events
        results[prefix + "cpu_s_per_1000_events"] = cpu / (done * events) * 1000
        results[prefix + "cpu_ms_per_request"] = cpu / done * 1000
        results[prefix + "gateway_cpu_utilisation"] = cpu / elapsed["gateway"]
        results[prefix + "ttft_direct_p99_ms"] = percentile(ttfts["direct"], 99) * 1000
        results[prefix + "ttft_gateway_p99_ms"] = percentile(ttfts["gateway"], 99) * 1000
        results[prefix + "ttft_added_p50_ms"] = added_ms(ttfts["gateway"], ttfts["direct"], 50)
        results[prefix + "ttft_added_p99_ms"] = added_ms(ttfts["gateway"], ttfts["direct"], 99)
        results[prefix + "ttft_added_p99_pct"] = (
            added_ms(ttfts["gateway"], ttfts["direct"], 99) / (percentile(ttfts["direct"], 99) * 1000) * 100
        )


async def measure_rss_growth(results: dict[str, Any], stack: Stack, gateway: probe.Target, plan: Plan) -> None:
    pid = stack.gateway_pid
    await probe.burst(gateway, 50, plan.rss_small)
    small = rss_bytes(pid)
    await probe.burst(gateway, 50, plan.rss_large - plan.rss_small)
    large = rss_bytes(pid)
    results["rss_requests_small"] = plan.rss_small
    results["rss_requests_large"] = plan.rss_large
    results["rss_after_small_mb"] = small / 2**20
    results["rss_after_large_mb"] = large / 2**20
    results["rss_growth_small_to_large_mb"] = (large - small) / 2**20


async def measure_open_streams(results: dict[str, Any], stack: Stack, slow: probe.Target, count: int) -> None:
    """RSS growth with ``count`` slow streams (250 ms between events) open at once in a fresh gateway."""
    pid = stack.gateway_pid
    idle = rss_bytes(pid)
    async with probe.OpenStreams(slow, count):
        await asyncio.sleep(0.5)
        held = rss_bytes(pid)
    results["open_streams"] = count
    results["rss_idle_mb"] = idle / 2**20
    results["rss_with_open_streams_mb"] = held / 2**20
    results["rss_per_open_stream_kb"] = (held - idle) / count / 1024


async def measure_paced(
    results: dict[str, Any], stack: Stack, direct: probe.Target, gateway: probe.Target, plan: Plan, events: int
) -> None:
    """100 streams started together, ``paced_rounds`` times per path (a thundering herd of setups)."""
    pid = stack.gateway_pid
    d: list[float] = []
    g: list[float] = []
    cpu = 0.0
    for _round in range(plan.paced_rounds):
        d += await asyncio.gather(*(probe.stream_once(direct) for _ in range(plan.paced_streams)))
        before = cpu_seconds(pid)
        g += await asyncio.gather(*(probe.stream_once(gateway) for _ in range(plan.paced_streams)))
        cpu += cpu_seconds(pid) - before
    results["paced_streams"] = plan.paced_streams
    results["paced_requests"] = len(g)
    results["paced_cpu_us_per_event"] = cpu / (len(g) * events) * 1e6
    results["paced_ttft_direct_p50_ms"] = percentile(d, 50) * 1000
    results["paced_ttft_added_p50_ms"] = added_ms(g, d, 50)
    results["paced_ttft_added_p99_ms"] = added_ms(g, d, 99)


async def steady(target: probe.Target, streams: int, rounds: int, spread: float) -> list[float]:
    """``streams`` workers, each streaming ``rounds`` answers one after another; worker *i* starts
    ``i / streams`` of ``spread`` seconds in, so ``streams`` streams are open at any time from then
    on, each at its own point of its answer (as a real model's are), not all at their first byte."""

    async def worker(index: int) -> list[float]:
        await asyncio.sleep(spread * index / streams)
        return [await probe.stream_once(target) for _ in range(rounds)]

    runs = await asyncio.gather(*(worker(index) for index in range(streams)))
    return [ttft for run in runs for ttft in run]


async def measure_paced_steady(
    results: dict[str, Any], stack: Stack, direct: probe.Target, gateway: probe.Target, plan: Plan, events: int
) -> None:
    """The paced load in its steady state: starts spread over one answer's length."""
    pid = stack.gateway_pid
    spread = events * plan.paced_delay
    d = await steady(direct, plan.paced_streams, plan.paced_steady_rounds, spread)
    before, started = cpu_seconds(pid), time.perf_counter()
    g = await steady(gateway, plan.paced_streams, plan.paced_steady_rounds, spread)
    cpu, wall = cpu_seconds(pid) - before, time.perf_counter() - started
    results["steady_requests"] = len(g)
    results["steady_cpu_us_per_event"] = cpu / (len(g) * events) * 1e6
    results["steady_gateway_cpu_utilisation"] = cpu / wall
    results["steady_upstream_events_per_s"] = plan.paced_streams / plan.paced_delay
    results["steady_ttft_direct_p50_ms"] = percentile(d, 50) * 1000
    results["steady_ttft_added_p50_ms"] = added_ms(g, d, 50)
    results["steady_ttft_added_p99_ms"] = added_ms(g, d, 99)


def measure_translation(results: dict[str, Any], repeat: int) -> None:
    """The protocol core alone on the core's own benchmark stream, best of ``repeat``."""
    from bench.bench_translate import build_stream, reads
    from codexgate.protocol.sse_decoder import SSEDecoder
    from codexgate.protocol.sse_writer import encode_chunks
    from codexgate.protocol.stream_translator import ChatStreamTranslator

    pieces = reads(build_stream())
    deltas = sum(1 for e in SSEDecoder().feed(b"".join(pieces)) if str(e.get("type", "")).endswith(".delta"))
    best = float("inf")
    for _ in range(max(repeat, 1)):
        started = time.perf_counter()
        decoder, translator = (
            SSEDecoder(),
            ChatStreamTranslator(model="gpt-5", include_usage=True, completion_id="chatcmpl-bench", created=1),
        )
        feed = translator.feed
        for piece in pieces:
            chunks: list[dict[str, Any]] = []
            for event in decoder.feed(piece):
                chunks += feed(event)
            encode_chunks(chunks)
        best = min(best, time.perf_counter() - started)
    results["translation_us_per_delta_event"] = best / deltas * 1e6


@contextlib.contextmanager
def client_collector_paused() -> Iterator[None]:
    """No garbage collection in this client while it times a part: a pause of its own would land at
    random in one path's tail (collected between the parts instead)."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def measure(plan: Plan, home: Path, smoke: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"smoke": smoke}
    with running_stack(home, event_delay=0.0, tokens=TOKENS) as stack:
        direct, gateway = targets(stack)
        events = await events_per_stream(direct)
        results["events_per_stream"] = events
        await probe.sequential(gateway, WARM_UP)  # warm-up: imports, caches, the upstream pool
        await probe.sequential(direct, WARM_UP)
        with client_collector_paused():
            await measure_ttft(results, stack, direct, gateway, plan.ttft_requests)
        with client_collector_paused():
            await measure_bursts(results, stack, direct, gateway, plan, events)
        await measure_rss_growth(results, stack, gateway, plan)
    with running_stack(home, event_delay=plan.paced_delay, tokens=TOKENS) as stack:
        direct, gateway = targets(stack)
        _, slow = targets(stack, "scenario:slow " + PROMPT)
        await asyncio.gather(*(probe.stream_once(gateway) for _ in range(10)))  # warm-up
        await measure_open_streams(results, stack, slow, plan.open_streams)
        with client_collector_paused():
            await measure_paced(results, stack, direct, gateway, plan, events)
        with client_collector_paused():
            await measure_paced_steady(results, stack, direct, gateway, plan, events)
    measure_translation(results, plan.translation_repeat)
    return results


# ---- the table -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    label: str
    key: str
    op: str  # "<", "<=", ">=" or "" (for orientation only)
    target: float = 0.0
    scale: float = 1.0
    unit: str = ""

    def passes(self, value: float) -> bool | None:
        checks: dict[str, Callable[[float, float], bool]] = {
            "<": lambda v, t: v < t,
            "<=": lambda v, t: v <= t,
            ">=": lambda v, t: v >= t,
        }
        return checks[self.op](value, self.target) if self.op else None


ROWS = [
    Row("gateway CPU per 1,000 upstream events, c=1", "c1_cpu_s_per_1000_events", "<=", 0.010, unit=" s"),
    Row("gateway CPU per 1,000 upstream events, c=50", "c50_cpu_s_per_1000_events", "<=", 0.010, unit=" s"),
    Row("gateway CPU per 1,000 upstream events, c=200", "c200_cpu_s_per_1000_events", "<=", 0.010, unit=" s"),
    Row("gateway CPU per request, c=50", "c50_cpu_ms_per_request", "", unit=" ms"),
    Row("added TTFT p50, c=1 (sequential)", "ttft_added_p50_ms", "<", 1.0, unit=" ms"),
    Row("added TTFT p99, c=1 (sequential)", "ttft_added_p99_ms", "<", 5.0, unit=" ms"),
    Row("  of p50: inside the gateway (its record − direct)", "ttft_recorded_added_p50_ms", "", unit=" ms"),
    Row("streams/s vs direct, c=1", "c1_ratio", "", scale=100, unit=" %"),
    Row("streams/s vs direct, c=50", "c50_ratio", ">=", 0.9, scale=100, unit=" %"),
    Row("streams/s vs direct, c=200", "c200_ratio", ">=", 0.9, scale=100, unit=" %"),
    Row("added TTFT p99 vs direct p99, c=50", "c50_ttft_added_p99_pct", "<", 10.0, unit=" %"),
    Row("added TTFT p99 vs direct p99, c=200", "c200_ttft_added_p99_pct", "<", 10.0, unit=" %"),
    Row("events/s direct, c=200", "c200_direct_events_per_s", ""),
    Row("events/s through the gateway, c=200", "c200_gateway_events_per_s", ""),
    Row("RSS per open stream (slow streams held at once)", "rss_per_open_stream_kb", "<", 40.0, unit=" KB"),
    Row("RSS growth from 1,000 to 10,000 requests", "rss_growth_small_to_large_mb", "<", 2.0, unit=" MB"),
    Row("translation per delta event (protocol core)", "translation_us_per_delta_event", "<", 5.0, unit=" µs"),
    Row("paced (100 streams) started together: CPU per event", "paced_cpu_us_per_event", "<=", 25.0, unit=" µs"),
    Row("paced, started together: added TTFT p50", "paced_ttft_added_p50_ms", "", unit=" ms"),
    Row("paced, steady state (starts spread): CPU per event", "steady_cpu_us_per_event", "<=", 25.0, unit=" µs"),
    Row("paced, steady state: added TTFT p50", "steady_ttft_added_p50_ms", "<", 5.0, unit=" ms"),
    Row("paced, steady state: added TTFT p99", "steady_ttft_added_p99_ms", "", unit=" ms"),
]


def fmt(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    smoke = " (smoke run: too few requests for the figures to mean much)" if results["smoke"] else ""
    paced = f"paced: {results['meta']['plan']['paced_delay'] * 1000:g} ms between upstream events"
    table = Table(title="codexgate overhead vs direct" + smoke, caption=paced)
    for column in ("measure", "target", "measured", "pass"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for row in ROWS:
        value = float(results[row.key])
        verdict = row.passes(value)
        target = f"{row.op} {fmt(row.target * row.scale)}{row.unit}" if row.op else ""
        mark = "" if verdict is None else ("[green]yes[/]" if verdict else "[red]NO[/]")
        table.add_row(row.label, target, fmt(value * row.scale) + row.unit, mark)
    Console(width=120).print(table)


async def interruptible(plan: Plan, home: Path, smoke: bool) -> dict[str, Any]:
    """:func:`measure` within the time limit; Ctrl-C or SIGTERM cancel it, so every ``finally``
    (the stacks' shutdown first) runs. uvloop does not run ``signal.signal`` handlers while it
    waits, hence the loop's own signal handlers."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await asyncio.wait_for(measure(plan, home, smoke), plan.time_limit)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="a seconds-long run with a few requests per part")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--paced-delay", type=float, default=None, help="seconds between upstream events when paced (0.002)"
    )
    args = parser.parse_args()
    plan = SMOKE if args.smoke else FULL
    if args.paced_delay is not None:
        plan = replace(plan, paced_delay=args.paced_delay)
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    if can_pin():
        pin_self()
    else:
        print("note: taskset (or a second CPU) is missing; the processes are not pinned to cores", flush=True)
    from tests.helpers import write_auth_json

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="codexgate-bench-") as tmp:
        home = Path(tmp)
        write_auth_json(home)
        try:
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                results = runner.run(interruptible(plan, home, args.smoke))
        except asyncio.CancelledError:
            print("interrupted: the simulator and the gateway were stopped", file=sys.stderr)
            sys.exit(130)
    results["meta"] = {
        "plan": asdict(plan),
        "pinned": can_pin(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "seconds": round(time.monotonic() - started, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    report(results)
    print(f"wrote {args.out} ({results['meta']['seconds']} s)")


if __name__ == "__main__":
    main()
