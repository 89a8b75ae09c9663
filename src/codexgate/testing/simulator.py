"""The upstream simulator's public entry points (see :mod:`codexgate.testing`).

Run it standalone: ``python -m codexgate.testing.simulator --port 9292`` (or ``codexgate simulate``).
"""

from __future__ import annotations

import sys

from codexgate.testing.recorded import RateLimits, RecordedRequest
from codexgate.testing.scenarios import SCENARIO_NAMES, Scenario, ToolCall, expected_text
from codexgate.testing.simulator_process import main, run_simulator, simulator_thread
from codexgate.testing.simulator_server import UpstreamSimulator

__all__ = [
    "SCENARIO_NAMES",
    "RateLimits",
    "RecordedRequest",
    "Scenario",
    "ToolCall",
    "UpstreamSimulator",
    "expected_text",
    "main",
    "run_simulator",
    "simulator_thread",
]

if __name__ == "__main__":
    sys.exit(main())
