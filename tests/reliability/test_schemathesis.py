"""Schemathesis over every operation of the app's OpenAPI schema: no 5xx, every error in the envelope
(Anthropic's for the Messages routes, OpenAI's for the others).

The app runs without credentials, so requests that pass validation stop at the 401 before any
upstream call; what is fuzzed is the HTTP surface: routing, body limits, JSON and schema checks.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from codexgate.server.app import create_app
from tests.helpers import settings_for

# schemathesis calls the app as host "testserver"
app = create_app(
    settings_for(Path(tempfile.mkdtemp(prefix="codexgate-fuzz-")), "http://127.0.0.1:9", allowed_hosts=["testserver"])
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
#: each operation's fuzzing must really send requests: at least this many (an operation without
#: parameters gives hypothesis little to vary), and at least ``MIN_BODY_CASES`` where there is a body
MIN_CASES = 5
MIN_BODY_CASES = 30


@pytest.fixture
def sent(request: pytest.FixtureRequest) -> Iterator[list[int]]:
    """The statuses of the requests one operation's fuzzing sent, checked once its examples are done
    (hypothesis runs all of an operation's examples within one test item, so this fixture is set up
    once per operation, and the check needs no other test to run before or after it)."""
    statuses: list[int] = []
    yield statuses
    name = request.node.name
    print(f"{name}: {len(statuses)} requests; statuses {sorted(set(statuses))}")
    assert len(statuses) >= (MIN_BODY_CASES if "[POST " in name else MIN_CASES), name


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_5xx_and_openai_envelope(case: schemathesis.Case, sent: list[int]) -> None:
    response = case.call()
    sent.append(response.status_code)
    assert response.status_code < 500, response.text
    if response.status_code >= 400 and case.path.startswith("/v1/messages"):  # Anthropic's envelope
        document = response.json()
        assert document["type"] == "error" and set(document["error"]) == {"type", "message"}
    elif response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]
