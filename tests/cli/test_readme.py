"""The README says what the CLI does: the demo command, every scenario, the exit codes, the uv
install on a PEP 668 system outside the test-command markers, and the benchmark's details moved out."""

from __future__ import annotations

import re
from pathlib import Path

from codexgate.testing import SCENARIO_NAMES
from codexgate.testing.scenario_help import scenario_markdown

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _between(text: str, start: str, end: str) -> str:
    return text[text.index(start) + len(start) : text.index(end)]


def test_readme_lists_every_scenario_as_the_simulator_does() -> None:
    listed = _between(README, "<!-- scenarios -->\n", "<!-- /scenarios -->")
    assert listed == scenario_markdown(), "regenerate with: uv run python -m codexgate.testing.scenario_help"
    assert {name for name in re.findall(r"^- `(\w+)`", listed, re.M)} == set(SCENARIO_NAMES)


def test_readme_demo_is_one_command_and_needs_nothing_from_tests() -> None:
    assert "uv run codexgate demo" in README
    assert "tests.helpers" not in README and "from tests" not in README


def test_readme_install_and_exit_codes() -> None:
    first = "pip install uv && uv run codexgate serve"
    assert first in README
    markers = _between(README, "<!-- test-command -->", "<!-- /test-command -->")
    assert "pipx" not in markers and "venv" not in markers
    assert "pipx install uv" in README and "python3 -m venv" in README and "PEP 668" in README
    for code, meaning in (("0", "done"), ("1", "runtime failure"), ("2", "usage or configuration error")):
        assert re.search(rf"\*\*{code}\*\* (a )?{meaning}", README), code
    assert "is in use — another codexgate? use --port" in README


def test_benchmark_details_live_in_bench_readme() -> None:
    bench = (ROOT / "bench" / "README.md").read_text()
    assert "What is out of reach" in bench and "What is out of reach" not in README
    assert "| measure | target | measured |" in README and "| measure | target | measured |" in bench
    assert "(bench/README.md)" in README
