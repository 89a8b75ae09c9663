"""Prometheus metrics for ``GET /metrics``, in a registry of their own per app instance.

Each :class:`Metrics` owns a fresh ``CollectorRegistry`` (never the process-global one), so several
gateways in one process (the test suite) count separately. Every name starts with ``codexgate_``;
``codexgate_active_streams``, ``codexgate_build_info`` and the four ``codexgate_tokens_total`` kinds
have a sample from start-up on.

Every request is counted once in ``codexgate_requests_total`` (refused ones too: 400, 401, 404,
405, 413, 415, 421, 429, 431 ...), and once more in ``codexgate_request_errors_total`` when it
ended with an error code. No label value is the client's free choice:

* ``model``: with :attr:`Metrics.known_model` set (the gateway sets it to its model catalog), the
  model sent upstream when the catalog lists it, else ``other`` (``""`` for a request that never
  named one). Without a catalog (unit tests, a catalog not fetched yet) the first
  :data:`MAX_LABEL_VALUES` distinct values of at most :data:`MAX_LABEL_LENGTH` printable characters
  pass, the rest are ``other``.
* ``endpoint``: the server passes route names and templates (a bounded set); the cap applies anyway.
* ``code``: error codes, capped the same way (upstream codes are the backend's choice).

``codexgate_auth_failures_total`` counts refused API keys (:meth:`Metrics.auth_failure`).

Server hooks: :meth:`Metrics.request_finished` with the request's usage record when it ends,
:meth:`Metrics.stream_opened` / :meth:`Metrics.stream_closed` around an upstream stream,
:meth:`Metrics.upstream_error` when the backend answers with an error, :meth:`Metrics.rate_limits`
with each new rate-limit snapshot, and :meth:`Metrics.render` for the response body.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from codexgate import __version__
from codexgate.storage.usage_db import UsageRecord

MAX_LABEL_VALUES = 100
MAX_LABEL_LENGTH = 128
OTHER = "other"
TOKEN_KINDS = ("input", "cached", "output", "reasoning")
RATE_LIMIT_WINDOWS = ("primary", "secondary")
ACCOUNT_STATES = ("active", "cooling", "needs_login", "disabled", "paused")
MAX_CACHED_SERIES = 10_000
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0)
DURATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)


class _LabelCap:
    """Lets the first ``limit`` distinct values through; maps later ones to ``other``."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(value) > MAX_LABEL_LENGTH or not value.isprintable():
            return OTHER
        with self._lock:
            if len(self._seen) >= self.limit:
                return OTHER
            self._seen.add(value)
        return value


class Metrics:
    """The gateway's counters, histograms and gauges, and their text exposition."""

    def __init__(self, version: str = __version__, *, max_label_values: int = MAX_LABEL_VALUES) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.requests = Counter(
            "codexgate_requests_total",
            "Requests served, by endpoint, model and HTTP status.",
            ["endpoint", "model", "status"],
            registry=registry,
        )
        self.tokens = Counter(
            "codexgate_tokens_total", "Tokens reported by the backend, by kind.", ["kind"], registry=registry
        )
        self.ttft = Histogram(
            "codexgate_time_to_first_token_seconds",
            "Seconds from request to the first token sent to the client.",
            buckets=TTFT_BUCKETS,
            registry=registry,
        )
        self.duration = Histogram(
            "codexgate_request_duration_seconds",
            "Seconds from request to the end of the response.",
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.request_errors = Counter(
            "codexgate_request_errors_total",
            "Requests that ended with an error, by endpoint, HTTP status and error code.",
            ["endpoint", "status", "code"],
            registry=registry,
        )
        self.auth_failures = Counter(
            "codexgate_auth_failures_total", "Requests refused for a missing or wrong API key.", registry=registry
        )
        self.upstream_errors = Counter(
            "codexgate_upstream_errors_total", "Errors from the Codex backend, by code.", ["code"], registry=registry
        )
        self.active_streams = Gauge("codexgate_active_streams", "Upstream streams open right now.", registry=registry)
        self.rate_limit_used = Gauge(
            "codexgate_rate_limit_used_percent",
            "Latest used percentage of the backend's rate-limit windows.",
            ["window"],
            registry=registry,
        )
        self.account_state = Gauge(
            "codexgate_account_state",
            "Each pool account's state (1 for its current state, 0 for the others), by account alias.",
            ["account", "state"],
            registry=registry,
        )
        self.account_used = Gauge(
            "codexgate_account_used_percent",
            "Each pool account's latest used percentage of its rate-limit windows, by account alias.",
            ["account", "window"],
            registry=registry,
        )
        self.build_info = Gauge(
            "codexgate_build_info", "codexgate's version (value is 1).", ["version"], registry=registry
        )
        self.build_info.labels(version=version).set(1)
        # Labelled children looked up once (``labels()`` costs more than the increment itself).
        self._token_counters = [self.tokens.labels(kind=kind) for kind in TOKEN_KINDS]
        self._window_gauges: dict[str, Any] = {}  # made on the first value: no sample before one
        self._request_counters: dict[tuple[str, str, int], Any] = {}
        self._model_label = _LabelCap(max_label_values)
        self._endpoint_label = _LabelCap(max_label_values)
        self._code_label = _LabelCap(max_label_values)
        #: whether a model name is one the catalog lists (True/False), or None when it cannot tell
        self.known_model: Callable[[str], bool | None] | None = None
        #: the pool's accounts (key → ``AccountState``), read at each render for the per-account gauges
        self.accounts: Callable[[], Mapping[str, Any]] | None = None

    # ---- hooks the server calls --------------------------------------------------------------

    def request_finished(self, record: UsageRecord) -> None:
        """Count a finished request: status, tokens by kind, time to first token and duration."""
        model = self.model_label(record)
        key = (record.endpoint, model, record.status)
        counter = self._request_counters.get(key)
        if counter is None:
            counter = self.requests.labels(
                endpoint=self._endpoint_label(record.endpoint), model=model, status=str(record.status)
            )
            if len(self._request_counters) < MAX_CACHED_SERIES:
                self._request_counters[key] = counter
        counter.inc()
        counts = (record.input_tokens, record.cached_tokens, record.output_tokens, record.reasoning_tokens)
        for tokens, count in zip(self._token_counters, counts, strict=True):
            if count > 0:
                tokens.inc(count)
        if record.ttft_ms is not None:
            self.ttft.observe(record.ttft_ms / 1000.0)
        if record.duration_ms is not None:
            self.duration.observe(record.duration_ms / 1000.0)
        if record.error_code:
            self.request_errors.labels(
                endpoint=self._endpoint_label(record.endpoint),
                status=str(record.status),
                code=self._code_label(record.error_code),
            ).inc()

    def model_label(self, record: UsageRecord) -> str:
        """The ``model`` label of ``record`` (see the module doc)."""
        known = self.known_model
        if known is None:
            return self._model_label(record.model)
        sent = record.model_sent or ""
        verdict = known(sent) if sent else None
        if verdict:
            return sent
        if verdict is None:
            chosen = sent or record.model
            return self._model_label(chosen) if chosen else ""
        return OTHER

    def auth_failure(self) -> None:
        self.auth_failures.inc()

    def stream_opened(self) -> None:
        self.active_streams.inc()

    def stream_closed(self) -> None:
        self.active_streams.dec()

    def upstream_error(self, code: str | int | None) -> None:
        self.upstream_errors.labels(code=self._code_label(str(code) if code is not None else "unknown")).inc()

    def rate_limits(self, snapshot: Mapping[str, Any] | None) -> None:
        """Set ``codexgate_rate_limit_used_percent{window}`` from a rate-limit snapshot."""
        if not snapshot:
            return
        for window in RATE_LIMIT_WINDOWS:
            values = snapshot.get(window)
            if isinstance(values, Mapping):
                used = values.get("used_percent")
                if isinstance(used, int | float):
                    gauge = self._window_gauges.get(window)
                    if gauge is None:
                        gauge = self._window_gauges[window] = self.rate_limit_used.labels(window=window)
                    gauge.set(float(used))

    def count_dropped_usage_rows(self, read: Callable[[], int]) -> None:
        """``codexgate_usage_rows_dropped_total``: usage rows the writer had to drop (its database was
        unreachable past its queue's bound), read from ``read`` when ``/metrics`` is rendered."""
        self.registry.register(
            _ReadCounter(
                "codexgate_usage_rows_dropped", "Usage rows dropped (database unreachable past the queue bound).", read
            )
        )

    # ---- exposition --------------------------------------------------------------------------

    def render(self) -> tuple[bytes, str]:
        """The text exposition and its content type, for ``GET /metrics``."""
        if self.accounts is not None:
            self._account_gauges(self.accounts())
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def _account_gauges(self, accounts: Mapping[str, Any]) -> None:
        """``codexgate_account_state`` and ``codexgate_account_used_percent`` from the accounts' states
        (labelled by alias only; an account that left the pool leaves no series behind)."""
        self.account_state.clear()
        self.account_used.clear()
        for state in accounts.values():
            alias = str(state.alias)
            current = str(state.status.value)
            for name in ACCOUNT_STATES:
                self.account_state.labels(account=alias, state=name).set(1 if name == current else 0)
            for window in RATE_LIMIT_WINDOWS:
                values = getattr(state, window, None)
                if values is not None:
                    self.account_used.labels(account=alias, window=window).set(float(values.used_percent))


class _ReadCounter(Collector):
    """A counter whose value another object keeps (read at exposition time, never on a request)."""

    def __init__(self, name: str, documentation: str, read: Callable[[], int]) -> None:
        self.name = name
        self.documentation = documentation
        self.read = read

    def collect(self) -> Iterable[CounterMetricFamily]:
        yield CounterMetricFamily(self.name, self.documentation, value=self.read())
