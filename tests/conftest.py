"""Fixtures shared by the suite: the upstream simulator and the gateway, both real HTTP on loopback."""

from __future__ import annotations

import contextlib
import logging
import os
import re
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


# Every log record of the whole suite, rendered when it is created (before any redaction filter a
# test may install), is checked at the end for anything that looks like a token or an API key.
SECRET_PATTERNS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT (access or id token)
    re.compile(r"\brt_(?:test|rotated)_[A-Za-z0-9_]+"),  # the suite's refresh tokens
    re.compile(r"\bcg-[A-Za-z0-9_-]{30,}"),  # codexgate API keys
]
_LOG_MESSAGES: list[str] = []
_make_record = logging.getLogRecordFactory()


def _recording_factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _make_record(*args, **kwargs)
    if record.name == "codexgate.test" or "A1b2_C3d4" in str(record.msg) + str(record.args):
        return record  # the redaction tests log their probe secrets on purpose, to see them masked
    with contextlib.suppress(Exception):
        _LOG_MESSAGES.append(record.getMessage() + ("\n" + str(record.exc_info[1]) if record.exc_info else ""))
    return record


@pytest.fixture(scope="session", autouse=True)
def no_secret_in_any_log() -> Iterator[None]:
    logging.setLogRecordFactory(_recording_factory)
    for name in ("codexgate.auth", "codexgate.upstream", "codexgate.server"):  # where tokens pass by
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield
    logging.setLogRecordFactory(_make_record)
    leaks = [message for message in _LOG_MESSAGES for pattern in SECRET_PATTERNS if pattern.search(message)]
    assert not leaks, f"{len(leaks)} log records carry a secret, e.g. {leaks[0][:300]!r}"


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
