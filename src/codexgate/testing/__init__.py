"""Test support: the upstream simulator, a real HTTP stand-in for the ChatGPT Codex backend.

Used by the test suite, the benchmark and ``codexgate simulate``; nothing in the product imports it.
"""

from codexgate.testing.ports import free_port
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
    "free_port",
    "main",
    "run_simulator",
    "simulator_thread",
]
