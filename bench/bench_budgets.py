"""The cost of the per-key budget check on the request path (embedded mode: counters in memory).

    uv run python bench/bench_budgets.py            # about a second
    uv run python bench/bench_budgets.py --smoke    # fewer rounds

Times :meth:`BudgetTracker.check` for a key with every limit set (day/week/month tokens, a generous
requests-per-minute limit, three model globs, an expiry), for a key without limits, and
:meth:`BudgetTracker.record`, and prints microseconds per call (best of five rounds). Target: < 10 µs.
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit

from codexgate.storage.api_keys import KeyInfo
from codexgate.storage.budgets import NO_LIMITS, BudgetTracker, KeyLimits

TARGET_MICROSECONDS = 10.0


def measure(rounds: int) -> dict[str, float]:
    tracker = BudgetTracker()
    limits = KeyLimits(
        tokens_per_day=10**12,
        tokens_per_week=10**12,
        tokens_per_month=10**12,
        requests_per_minute=10**9,
        allowed_models=("gpt-5*", "codex-*", "o4-mini"),
        expires_at=time.time() + 86400,
    )
    limited = KeyInfo(id="key_limited", name="limited", created_at=0.0, limits=limits)
    plain = KeyInfo(id="key_plain", name="plain", created_at=0.0, limits=NO_LIMITS)
    now = time.time()
    tracker.record(limited, 1000, now)
    clock = iter(range(10**12))

    def check_limited() -> None:
        # the RPM deque holds at most a minute of requests: advance the clock 1 ms per call
        if tracker.check(limited, "gpt-5.1-codex", now + next(clock) / 1000) is not None:
            raise SystemExit("the limited key was refused")

    def check_plain() -> None:
        tracker.check(plain, "gpt-5.1-codex", now)

    def record() -> None:
        tracker.record(limited, 100, now)

    results = {}
    for name, call in (("check (all limits)", check_limited), ("check (no limits)", check_plain), ("record", record)):
        best = min(timeit.repeat(call, number=rounds, repeat=5)) / rounds
        results[name] = best * 1e6
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="fewer rounds")
    args = parser.parse_args()
    results = measure(2_000 if args.smoke else 50_000)
    failed = False
    print(f"{'operation':<22} {'µs/call':>8}  target")
    for name, micros in results.items():
        target = f"< {TARGET_MICROSECONDS:g} µs" if name.startswith("check") else ""
        print(f"{name:<22} {micros:>8.2f}  {target}")
        failed |= name.startswith("check") and micros >= TARGET_MICROSECONDS
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
