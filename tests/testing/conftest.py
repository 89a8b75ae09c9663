"""Fixtures for the simulator's own tests."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from codexgate.testing import UpstreamSimulator, simulator_thread


@pytest.fixture
def sim() -> Iterator[UpstreamSimulator]:
    """A simulator in a background thread (fresh per test: starting one takes a few ms)."""
    with simulator_thread() as simulator:
        yield simulator


@pytest.fixture
def http(sim: UpstreamSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.base_url, timeout=10) as client:
        yield client
