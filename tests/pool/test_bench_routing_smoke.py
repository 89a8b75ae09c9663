"""bench/bench_routing.py still runs: a small run prints its table and every figure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_routing_benchmark_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_routing.py"), "--count", "200", "--repeat", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "routing over 100 accounts" in result.stdout
    assert "sticky miss" in result.stdout and "sticky hit" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["accounts"] == 100
    for key in ("sticky_hit_us", "sticky_miss_us", "least_used_choose_us"):
        value = figures[key]
        # The 20 µs budget is for a quiet machine; here only a very wide bound against a gross regression.
        assert isinstance(value, float) and math.isfinite(value) and 0 < value < 2000, (key, value)
