"""Profile the gateway under the benchmark's load: cProfile in the (pinned) gateway process.

    uv run python bench/profile_gateway.py [--requests 2000] [--concurrency 50] [--event-delay 0]

Starts the same stack as ``bench_gateway.py`` but with the gateway under ``python -m cProfile``,
drives ``--requests`` streamed chat requests, stops the gateway with SIGTERM (so the profile is
written) and prints the top functions by own time and by cumulative time. cProfile roughly doubles
the cost of every Python call, so read the shares, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import sys
import tempfile
from pathlib import Path

import uvloop

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import probe  # noqa: E402
from bench.bench_gateway import TOKENS, targets  # noqa: E402
from bench.processes import cpu_seconds, pin_self, running_stack, stop  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--event-delay", type=float, default=0.0)
    parser.add_argument("--tokens", type=int, default=TOKENS, help="text deltas per answer")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gateway.prof")
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    pin_self()
    from tests.helpers import write_auth_json

    args.out.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "cProfile", "-o", str(args.out), "-m", "codexgate", "serve"]
    with tempfile.TemporaryDirectory(prefix="codexgate-profile-") as tmp:
        home = Path(tmp)
        write_auth_json(home)
        with running_stack(home, event_delay=args.event_delay, tokens=args.tokens, gateway_command=command) as stack:
            _direct, gateway = targets(stack)

            async def load() -> tuple[float, float]:
                await probe.sequential(gateway, 10)
                before = cpu_seconds(stack.gateway_pid)
                seconds, _ = await probe.burst(gateway, args.concurrency, args.requests)
                return seconds, cpu_seconds(stack.gateway_pid) - before

            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                seconds, cpu = runner.run(load())
            stop([stack.gateway])  # SIGTERM: uvicorn returns, cProfile writes its file
    print(f"{args.requests} requests in {seconds:.2f} s; gateway CPU {cpu:.2f} s (under cProfile)")
    stats = pstats.Stats(str(args.out))
    stats.sort_stats("tottime").print_stats(args.top)
    stats.sort_stats("cumulative").print_stats(args.top)


if __name__ == "__main__":
    main()
