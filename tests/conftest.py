"""Fixtures shared by the suite: the upstream simulator and the gateway, both real HTTP on loopback."""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest

from codexgate.config import Settings
from codexgate.server.app import create_app
from codexgate.testing import UpstreamSimulator, simulator_thread
from tests.helpers import serve_in_thread, settings_for, write_auth_json


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


_raise_fd_limit()

# No test may reach the internet: every process the suite starts (servers, CLI commands) inherits
# loopback addresses for the backend and the issuer unless a test sets its own.
os.environ["CODEXGATE_AUTH_ISSUER"] = "http://127.0.0.1:9"
os.environ["CODEXGATE_UPSTREAM_URL"] = "http://127.0.0.1:9"


@dataclass
class Gateway:
    """A running gateway in front of a running simulator."""

    base_url: str
    simulator: UpstreamSimulator
    settings: Settings
    home: Path
    app: Any

    def client(self, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=self.base_url + "/v1", api_key=kwargs.pop("api_key", "sk-anything"), max_retries=0, **kwargs
        )

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            base_url=self.base_url + "/v1", api_key=kwargs.pop("api_key", "sk-anything"), max_retries=0, **kwargs
        )


@pytest.fixture
def simulator() -> Iterator[UpstreamSimulator]:
    with simulator_thread() as sim:
        yield sim


def start_gateway(simulator: UpstreamSimulator, home: Path, **overrides: Any) -> Any:
    write_auth_json(home)
    settings = settings_for(home, simulator.base_url, **overrides)
    return settings, serve_in_thread(create_app(settings))


@pytest.fixture
def gateway(simulator: UpstreamSimulator, tmp_path: Path) -> Iterator[Gateway]:
    settings, served_context = start_gateway(simulator, tmp_path / "home")
    with served_context as served:
        yield Gateway(
            base_url=served.base_url,
            simulator=simulator,
            settings=settings,
            home=tmp_path / "home",
            app=served.server.config.app,
        )
