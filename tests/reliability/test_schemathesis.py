"""Schemathesis over every operation of the app's OpenAPI schema: no 5xx, every error in the envelope.

The app runs without credentials, so requests that pass validation stop at the 401 before any
upstream call; what is fuzzed is the HTTP surface: routing, body limits, JSON and schema checks.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings

from codexgate.server.app import create_app
from tests.helpers import settings_for

# schemathesis calls the app as host "testserver"
app = create_app(
    settings_for(Path(tempfile.mkdtemp(prefix="codexgate-fuzz-")), "http://127.0.0.1:9", allowed_hosts=["testserver"])
)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
CASES: list[int] = []


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_5xx_and_openai_envelope(case: schemathesis.Case) -> None:
    response = case.call()
    CASES.append(response.status_code)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert set(error) == {"message", "type", "param", "code"} and error["message"]


def test_zz_cases_ran() -> None:
    """Runs after the fuzzing (file order): it really sent requests."""
    print(f"schemathesis sent {len(CASES)} requests; statuses {sorted(set(CASES))}")
    assert len(CASES) >= 30
