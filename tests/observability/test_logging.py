"""configure_logging: text and JSON lines, the access line, and the redaction filter."""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Iterator

import orjson
import pytest

from codexgate.observability.logging import (
    FIELD_LIMIT,
    RedactionFilter,
    bounded,
    configure_logging,
    escape_controls,
    log_request,
    log_usage,
    redact,
)
from codexgate.storage.usage_db import UsageRecord
from tests.helpers import make_jwt

CG_KEY = "cg-" + "A1b2_C3d4-" * 4 + "xyz"
SK_KEY = "sk-proj-" + "Zz9" * 10


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("uvicorn.access")
    access_state = (list(access.handlers), access.propagate, access.disabled)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for handler in handlers:
        handler.filters[:] = [f for f in handler.filters if not isinstance(f, RedactionFilter)]
    access.handlers[:], access.propagate, access.disabled = access_state


def _configure(fmt: str) -> io.StringIO:
    stream = io.StringIO()
    configure_logging("info", fmt, stream=stream)  # type: ignore[arg-type]
    return stream


def test_json_access_line(restore_logging: None) -> None:
    stream = _configure("json")
    log_request(
        "POST",
        "/v1/chat/completions",
        200,
        model="gpt-5",
        input_tokens=12,
        cached_tokens=2,
        output_tokens=30,
        reasoning_tokens=4,
        ttft_ms=120.44,
        duration_ms=850.0,
        request_id="req_abc",
        key_name="laptop",
        stream=True,
    )
    [line] = stream.getvalue().splitlines()
    document = orjson.loads(line)
    assert document["level"] == "info" and document["logger"] == "codexgate.access"
    assert document["method"] == "POST" and document["path"] == "/v1/chat/completions"
    assert document["status"] == 200 and document["model"] == "gpt-5"
    assert (document["input_tokens"], document["cached_tokens"], document["output_tokens"]) == (12, 2, 30)
    assert document["reasoning_tokens"] == 4
    assert document["ttft_ms"] == 120.4 and document["duration_ms"] == 850.0
    assert document["request_id"] == "req_abc" and document["key_name"] == "laptop"
    assert "POST /v1/chat/completions 200" in document["message"]


def test_text_access_line_from_a_usage_record(restore_logging: None) -> None:
    stream = _configure("text")
    record = UsageRecord(
        endpoint="/v1/responses",
        status=502,
        model_requested="gpt-5-high",
        input_tokens=5,
        output_tokens=0,
        duration_ms=33.0,
        request_id="req_1",
        error_code="upstream_error",
    )
    log_usage("POST", "/v1/responses", record)
    [line] = stream.getvalue().splitlines()
    assert "INFO" in line and "codexgate.access" in line
    assert "POST /v1/responses 502 model=gpt-5-high tokens=5/0/0/0 ttft=-ms duration=33ms request_id=req_1" in line
    assert "error=upstream_error" in line


def test_access_line_is_skipped_below_info(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging("warning", "text", stream=stream)
    log_request("GET", "/v1/models", 200)
    assert stream.getvalue() == ""


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_in_messages_args_and_tracebacks_are_masked(restore_logging: None, fmt: str) -> None:
    stream = _configure(fmt)
    jwt = make_jwt({"sub": "user", "exp": 1})
    logger = logging.getLogger("codexgate.test")
    logger.info("header Authorization: Bearer %s", CG_KEY)
    logger.warning("token %s and key %s", jwt, SK_KEY)
    logger.info("body %s", {"access_token": "plain-secret-value", "refresh_token": "rt_abcdef123456"})
    logger.info("raw key %s in text", CG_KEY)
    try:
        raise ValueError(f"upstream said no to {CG_KEY} / Bearer {jwt}")
    except ValueError:
        logger.exception("failed")
    log_request("POST", f"/v1/chat/completions/{CG_KEY}", 401, request_id="req_x")
    output = stream.getvalue()
    for secret in (CG_KEY, jwt, SK_KEY, "plain-secret-value", "rt_abcdef123456", jwt.split(".")[1]):
        assert secret not in output
    assert "Bearer ***" in output and "cg-***" in output and "ValueError" in output
    assert len(output.splitlines()) >= 6


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "POST /v1/chat/completions 200 model=gpt-5 tokens=1/0/2/0 task-scheduler request_id=req_123"
    assert redact(text) == text
    assert redact("Authorization: Basic dXNlcjpwYXNz") == "Authorization: ***"
    assert redact("api_key=cg-short") == "api_key=***"


def test_uvicorn_access_log_is_off_and_uvicorn_errors_reach_our_handler(restore_logging: None) -> None:
    stream = _configure("text")
    logging.getLogger("uvicorn.access").info('127.0.0.1 - "GET / HTTP/1.1" 200')
    logging.getLogger("uvicorn.error").warning("uvicorn says hi")
    output = stream.getvalue()
    assert "GET / HTTP/1.1" not in output
    assert "uvicorn says hi" in output


def test_other_root_handlers_get_the_filter_too(restore_logging: None) -> None:
    captured = io.StringIO()
    other = logging.StreamHandler(captured)
    logging.getLogger().addHandler(other)
    _configure("text")
    logging.getLogger("codexgate.test").info("key %s", CG_KEY)
    assert CG_KEY not in captured.getvalue() and "cg-***" in captured.getvalue()
    logging.getLogger().removeHandler(other)


def test_reconfiguring_replaces_our_handler(restore_logging: None) -> None:
    first = _configure("text")
    second = _configure("json")
    logging.getLogger("codexgate.test").info("once")
    assert first.getvalue() == ""
    assert orjson.loads(second.getvalue())["message"] == "once"


# -- client-chosen text: no forged lines, no stall ----------------------------------------------

FORGED = "2026-01-01 00:00:00,000 INFO    codexgate.access: POST /v1/admin 200 forged"


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_model_with_cr_lf_and_escapes_cannot_start_a_new_line(restore_logging: None, fmt: str) -> None:
    stream = _configure(fmt)
    model = f"gpt-5\r\n{FORGED}\n\x1b[2J\x1b[31mred\u2028\x85end"
    log_request("POST", "/v1/chat/completions\r\nX", 200, model=model, request_id="req\n1", key_name="k\re")
    output = stream.getvalue()
    assert output.count("\n") == 1 and output.endswith("\n") and "\r" not in output
    assert "\x1b" not in output and "\u2028" not in output and "\x85" not in output
    if fmt == "text":
        assert "model=gpt-5\\r\\n2026-01-01 00:00:00,000 INFO" in output
        assert "\\x1b[2J\\x1b[31mred\\u2028\\x85end" in output
        assert "request_id=req\\n1" in output and "key=k\\re" in output
    else:
        document = orjson.loads(output)
        assert document["model"] == model  # JSON escapes on its own: the value stays exact
        assert "\\r\\n2026-01-01" in document["message"]


def test_messages_and_tracebacks_cannot_forge_lines(restore_logging: None) -> None:
    stream = _configure("text")
    logger = logging.getLogger("codexgate.test")
    logger.warning("upstream said %s", f"no\n{FORGED}")
    try:
        raise ValueError(f"bad model\n{FORGED}\r\x1b[0m")
    except ValueError:
        logger.exception("request failed")
    lines = stream.getvalue().splitlines()
    records = [line for line in lines if not line.startswith(" ")]
    assert len(records) == 2 and all(" codexgate.test: " in line for line in records)
    assert "upstream said no\\n2026-01-01" in records[0]
    assert any(line.startswith("  Traceback (most recent call last):") for line in lines)
    assert any(line.strip() == "ValueError: bad model" for line in lines)
    assert any(line == f"  {FORGED}\\r\\x1b[0m" for line in lines)  # the traceback's line, indented


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_19_mb_value_logs_quickly_and_bounded(restore_logging: None, fmt: str) -> None:
    stream = _configure(fmt)
    # Built to make the masking regexes work hard: many suspect words and token-like runs.
    unit = "authorization=Bearer eyJ" + "a1" * 40 + ". api_key=" + "b" * 30 + " cg-" + "c" * 40 + "\n"
    huge = unit * (19_000_000 // len(unit))
    start = time.perf_counter()
    log_request("POST", "/v1/chat/completions", 400, model=huge, request_id=huge, key_name=huge)
    logging.getLogger("codexgate.test").warning("model %s", huge)
    try:
        raise ValueError(huge)
    except ValueError:
        logging.getLogger("codexgate.test").exception("failed")
    elapsed = time.perf_counter() - start
    output = stream.getvalue()
    assert elapsed < 1.0, elapsed
    assert len(output) < 200_000
    assert len(output.splitlines()) < 10_000  # the traceback is cut too


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_long_model_name_is_cut_with_a_marker(restore_logging: None, fmt: str) -> None:
    stream = _configure(fmt)
    log_request("POST", "/v1/chat/completions", 400, model="m" * 5_000_000, request_id="req_1")
    output = stream.getvalue()
    assert "m" * FIELD_LIMIT + "...[cut: 5000000 characters]" in output
    assert "m" * (FIELD_LIMIT + 1) not in output and "request_id" in output


def test_a_secret_across_the_cut_is_masked_whole() -> None:
    for offset in range(FIELD_LIMIT - len(CG_KEY), FIELD_LIMIT + 1):
        text = "x " * (offset // 2) + " " * (offset % 2) + CG_KEY + " tail" * 1000
        cut = bounded(text)
        assert len(cut) < FIELD_LIMIT + 60 and CG_KEY[:8] not in cut, offset


def test_escape_controls_and_bounded_leave_ordinary_text_alone() -> None:
    text = "POST /v1/chat/completions 200 model=gpt-5 ünïcødé ✓ 日本"
    assert escape_controls(text) is text
    assert bounded(text) is text
    assert escape_controls("a\tb\x00c\x7f") == "a\\tb\\x00c\\x7f"
