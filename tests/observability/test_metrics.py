"""Metrics: own registry per instance, codexgate_ names, start-up samples, and counts that parse back."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.parser import text_string_to_metric_families

from codexgate.observability.metrics import Metrics
from codexgate.storage.usage_db import UsageRecord


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.render()
    assert content_type == CONTENT_TYPE_LATEST
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body.decode()):
        assert family.name.startswith("codexgate_"), family.name
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_a_fresh_instance_has_active_streams_build_info_and_token_kinds() -> None:
    samples = _samples(Metrics(version="1.2.3"))
    assert samples[("codexgate_active_streams", ())] == 0
    assert samples[("codexgate_build_info", (("version", "1.2.3"),))] == 1
    for kind in ("input", "cached", "output", "reasoning"):
        assert samples[("codexgate_tokens_total", (("kind", kind),))] == 0


def test_recorded_requests_are_counted() -> None:
    metrics = Metrics()
    for status, ttft in ((200, 150.0), (200, 250.0), (502, None)):
        metrics.request_finished(
            UsageRecord(
                endpoint="/v1/chat/completions",
                status=status,
                model_requested="gpt-5",
                input_tokens=10,
                cached_tokens=4,
                output_tokens=20 if status == 200 else 0,
                reasoning_tokens=3 if status == 200 else 0,
                ttft_ms=ttft,
                duration_ms=1500.0,
            )
        )
    metrics.request_finished(UsageRecord(endpoint="/v1/models", status=200))
    metrics.upstream_error(502)
    metrics.upstream_error("usage_limit_reached")
    metrics.stream_opened()
    metrics.stream_opened()
    metrics.stream_closed()
    metrics.rate_limits({"primary": {"used_percent": 42.5}, "secondary": {"used_percent": 7}})

    samples = _samples(metrics)
    chat = (("endpoint", "/v1/chat/completions"), ("model", "gpt-5"))
    assert samples[("codexgate_requests_total", (*chat, ("status", "200")))] == 2
    assert samples[("codexgate_requests_total", (*chat, ("status", "502")))] == 1
    assert samples[("codexgate_requests_total", (("endpoint", "/v1/models"), ("model", ""), ("status", "200")))] == 1
    assert samples[("codexgate_tokens_total", (("kind", "input"),))] == 30
    assert samples[("codexgate_tokens_total", (("kind", "cached"),))] == 12
    assert samples[("codexgate_tokens_total", (("kind", "output"),))] == 40
    assert samples[("codexgate_tokens_total", (("kind", "reasoning"),))] == 6
    assert samples[("codexgate_time_to_first_token_seconds_count", ())] == 2
    assert samples[("codexgate_time_to_first_token_seconds_sum", ())] == 0.4
    assert samples[("codexgate_time_to_first_token_seconds_bucket", (("le", "0.25"),))] == 2
    assert samples[("codexgate_request_duration_seconds_count", ())] == 3
    assert samples[("codexgate_upstream_errors_total", (("code", "502"),))] == 1
    assert samples[("codexgate_upstream_errors_total", (("code", "usage_limit_reached"),))] == 1
    assert samples[("codexgate_active_streams", ())] == 1
    assert samples[("codexgate_rate_limit_used_percent", (("window", "primary"),))] == 42.5
    assert samples[("codexgate_rate_limit_used_percent", (("window", "secondary"),))] == 7


def test_instances_do_not_share_counts() -> None:
    first, second = Metrics(), Metrics()
    first.request_finished(UsageRecord(endpoint="/v1/responses", status=200, model_requested="m"))
    first.stream_opened()
    assert not any(name == "codexgate_requests_total" for name, _ in _samples(second))
    assert _samples(second)[("codexgate_active_streams", ())] == 0


def test_client_chosen_label_values_are_capped() -> None:
    metrics = Metrics(max_label_values=3)
    for index in range(10):
        metrics.request_finished(UsageRecord(endpoint="/v1/chat/completions", status=400, model_requested=f"m{index}"))
    models = {dict(labels)["model"] for name, labels in _samples(metrics) if name == "codexgate_requests_total"}
    assert models == {"m0", "m1", "m2", "other"}


def test_rate_limits_ignores_missing_or_odd_snapshots() -> None:
    metrics = Metrics()
    metrics.rate_limits(None)
    metrics.rate_limits({"primary": {"used_percent": "lots"}, "plan_type": "plus"})
    assert not any(name == "codexgate_rate_limit_used_percent" for name, _ in _samples(metrics))


def test_dropped_usage_rows_are_exposed() -> None:
    """The usage writer's dropped-row count (its database unreachable past the queue bound) is a counter."""
    from codexgate.observability.metrics import Metrics

    dropped = [0]
    metrics = Metrics()
    metrics.count_dropped_usage_rows(lambda: dropped[0])
    assert b"codexgate_usage_rows_dropped_total 0.0" in metrics.render()[0]
    dropped[0] = 7
    assert b"codexgate_usage_rows_dropped_total 7.0" in metrics.render()[0]
