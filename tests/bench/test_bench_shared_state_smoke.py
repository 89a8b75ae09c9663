"""The shared-state benchmark still runs: a smoke run prints its table and every figure, finite."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_bench_shared_state_smoke_run() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_shared_state.py"), "--smoke", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "added by state_url: TTFT p50" in result.stdout
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["requests"] == 30
    for name in ("embedded", "shared"):
        row = figures[name]
        assert row["ttft_p99_ms"] >= row["ttft_p50_ms"] > 0
        assert row["cpu_ms_per_request"] > 0
    for key in ("added_ttft_p50_ms", "added_ttft_p99_ms", "added_cpu_ms_per_request"):
        assert math.isfinite(figures[key])
    assert math.isclose(
        figures["added_ttft_p50_ms"], figures["shared"]["ttft_p50_ms"] - figures["embedded"]["ttft_p50_ms"]
    )
