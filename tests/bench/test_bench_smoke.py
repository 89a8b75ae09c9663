"""The end-to-end benchmark still runs: a smoke run prints its table and writes every figure."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.bench_gateway import ROWS  # noqa: E402


@pytest.mark.slow
def test_benchmark_smoke_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_gateway.py"), "--smoke", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "codexgate overhead vs direct" in result.stdout
    figures = json.loads(out.read_text())
    expected = {row.key for row in ROWS} | {
        f"c{concurrency}_{name}"
        for concurrency in (1, 50, 200)
        for name in (
            "direct_streams_per_s",
            "gateway_streams_per_s",
            "ratio",
            "direct_events_per_s",
            "gateway_events_per_s",
            "cpu_s_per_1000_events",
            "cpu_ms_per_request",
            "ttft_added_p99_ms",
            "ttft_added_p99_pct",
        )
    }
    expected |= {"ttft_added_p50_ms", "ttft_added_p99_ms", "rss_per_open_stream_kb", "rss_growth_small_to_large_mb"}
    expected |= {"translation_us_per_delta_event", "paced_cpu_us_per_event", "paced_ttft_added_p50_ms"}
    assert expected <= set(figures)
    for key in expected:
        assert isinstance(figures[key], int | float) and math.isfinite(figures[key]), key
    assert figures["c50_gateway_streams_per_s"] > 0 and figures["c200_gateway_streams_per_s"] > 0
    assert figures["events_per_stream"] > 200  # 200 text deltas and the events around them
