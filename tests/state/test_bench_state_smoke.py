"""The shared-state benchmark runs: a short run prints its table and its JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_state_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_state.py"), "--count", "300", "--repeat", "1", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "added per request" in result.stdout
    figures = json.loads(result.stdout[result.stdout.index("{") :])
    assert set(figures["reads"]) == {"embedded", "cached", "redis"}
    for row in figures["reads"].values():
        assert row["cpu_us_per_read"] > 0 and row["p99_us"] >= row["p50_us"] > 0
    # a cache hit never makes a round trip: it is far cheaper than a Redis read on loopback
    assert figures["reads"]["cached"]["wall_us_per_read"] * 5 < figures["reads"]["redis"]["wall_us_per_read"]
