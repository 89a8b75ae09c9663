"""The simulator's control and inspection API under ``/__simulator/``, for tests that run it as a process.

A test driving gateway *processes* against a simulator *process* cannot read the simulator's memory; these
endpoints answer what it needs (JSON in, JSON out; the simulator listens on loopback only):

* ``GET /__simulator/refreshes`` — ``{"refreshes": N, "refreshes_by_account": {…}, "reused_by_account": {…}}``
  (see :meth:`codexgate.testing.demo_auth.TokenIssuer.counts`);
* ``GET /__simulator/requests`` — one summary per recorded ``/responses`` request, oldest first:
  ``{"account", "prompt_cache_key", "session_id", "status", "scenario", "outcome"}``;
* ``POST /__simulator/limit`` — ``{"account_id", "remaining_requests", "resets_in", "in_stream"?}``:
  :meth:`~codexgate.testing.simulator_server.UpstreamSimulator.set_limit`;
* ``POST /__simulator/token-delay`` — ``{"seconds": S}``: the token endpoint waits S seconds before it spends
  the refresh token and answers (a refresh that is slow, or cut by a killed client, spends nothing).

:class:`SimulatorControl` is the test side (blocking, standard library only).
"""

from __future__ import annotations

import json
import urllib.request
from typing import TYPE_CHECKING, Any

from codexgate.testing.recorded import RecordedRequest

if TYPE_CHECKING:
    from aiohttp import web

    from codexgate.testing.simulator_server import UpstreamSimulator

__all__ = ["CONTROL_PREFIX", "SimulatorControl", "control", "request_summary"]

CONTROL_PREFIX = "/__simulator/"
CONTROL_TIMEOUT = 10.0


def request_summary(record: RecordedRequest) -> dict[str, Any]:
    body = record.json if isinstance(record.json, dict) else {}
    cache_key = body.get("prompt_cache_key")
    return {
        "account": record.account,
        "prompt_cache_key": cache_key if isinstance(cache_key, str) else None,
        "session_id": record.headers.get("session_id"),
        "status": record.status,
        "scenario": record.scenario,
        "outcome": record.outcome,
    }


def control(simulator: UpstreamSimulator, request: web.BaseRequest, record: RecordedRequest) -> web.Response:
    """Answer one ``/__simulator/…`` request (the body is already in ``record``)."""
    record.scenario = "control"
    name = request.path[len(CONTROL_PREFIX) :].strip("/")
    body = record.json if isinstance(record.json, dict) else {}
    if request.method == "GET" and name == "refreshes":
        return simulator.json_answer(record, 200, simulator.token_issuer.counts())
    if request.method == "GET" and name == "requests":
        summaries = [request_summary(r) for r in list(simulator.responses_requests)]
        return simulator.json_answer(record, 200, {"requests": summaries})
    if request.method == "POST" and name == "limit":
        try:
            simulator.set_limit(
                str(body["account_id"]),
                int(body["remaining_requests"]),
                float(body["resets_in"]),
                in_stream=bool(body.get("in_stream", False)),
            )
        except (KeyError, TypeError, ValueError):
            return simulator.json_answer(record, 400, {"detail": "account_id, remaining_requests, resets_in"})
        return simulator.json_answer(record, 200, {"ok": True})
    if request.method == "POST" and name == "token-delay":
        seconds = body.get("seconds")
        if not isinstance(seconds, int | float) or seconds < 0:
            return simulator.json_answer(record, 400, {"detail": "seconds: a number >= 0"})
        simulator.token_issuer.delay = float(seconds)
        return simulator.json_answer(record, 200, {"ok": True})
    return simulator.json_answer(record, 404, {"detail": "Not Found"})


class SimulatorControl:
    """Reads and sets a running simulator's state through its control API: ``SimulatorControl(base_url)``."""

    def __init__(self, base_url: str, timeout: float = CONTROL_TIMEOUT) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(self, method: str, name: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - an http:// URL of a loopback simulator
            self.base_url + CONTROL_PREFIX + name,
            data=data,
            method=method,
            headers={"content-type": "application/json"} if data is not None else {},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310 - loopback URL
            return json.loads(answer.read())

    def refreshes(self) -> dict[str, Any]:
        """``{"refreshes": N, "refreshes_by_account": {account: n}, "reused_by_account": {account: n}}``."""
        answer: dict[str, Any] = self._call("GET", "refreshes")
        return answer

    def refreshes_by_account(self) -> dict[str, int]:
        counts: dict[str, int] = self.refreshes()["refreshes_by_account"]
        return counts

    def requests(self) -> list[dict[str, Any]]:
        """The summaries of the ``/responses`` requests recorded, oldest first."""
        summaries: list[dict[str, Any]] = self._call("GET", "requests")["requests"]
        return summaries

    def set_limit(self, account_id: str, remaining_requests: int, resets_in: float, *, in_stream: bool = False) -> None:
        body = {
            "account_id": account_id,
            "remaining_requests": remaining_requests,
            "resets_in": resets_in,
            "in_stream": in_stream,
        }
        self._call("POST", "limit", body)

    def set_token_delay(self, seconds: float) -> None:
        self._call("POST", "token-delay", {"seconds": seconds})
