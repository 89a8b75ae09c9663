"""Log set-up: text or JSON lines on stderr, one access line per request, secrets masked.

:func:`configure_logging` installs one handler on the root logger, with a formatter for
``CODEXGATE_LOG_FORMAT`` (``text`` or ``json``) and a :class:`RedactionFilter` that masks bearer
values, JWT-looking strings, ``cg-``/``sk-`` keys and ``*_token=``/``api_key:`` values in every
message, argument and traceback that goes through it (defence in depth: nothing should log a
secret in the first place). uvicorn's own loggers propagate to that handler and its access log is
disabled in favour of :func:`log_request`.

The server runs uvicorn with ``access_log=False, log_config=None`` (so uvicorn neither logs access
lines nor replaces this configuration) and calls :func:`log_request` (or :func:`log_usage`) once per
request, when the response (or stream) has ended.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, Any, Literal

import orjson

from codexgate.storage.usage_db import UsageRecord

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "codexgate.access"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MASK = "***"

_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+"), r"\1\2" + MASK),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), MASK + "jwt" + MASK),
    (re.compile(r"\bcg-[A-Za-z0-9_-]{16,}"), "cg-" + MASK),
    (re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"), "sk-" + MASK),
    (
        re.compile(
            r"(?i)\b((?:access|refresh|id)_token|api_key|apikey|client_secret|password)"
            r"([\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',&;}]+"
        ),
        r"\1\2" + MASK,
    ),
    # An Authorization header's whole value, whatever the scheme (Basic, Bearer, a bare key).
    (re.compile(r"(?i)\b(authorization)([\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+"), r"\1\2" + MASK),
)


# Every pattern above needs one of these words (in the lower-cased text): one search for them spares
# the six substitutions in the common case (an access line, a status message) where none occurs.
_SUSPECT = re.compile(r"bearer|eyj|cg-|sk-|_token|api_?key|client_secret|password|authorization")


def redact(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``***``."""
    if _SUSPECT.search(text.lower()) is None:
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactionFilter(logging.Filter):
    """Masks secrets in the formatted message, the access fields and any traceback of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text, still masked
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            record.__dict__["access"] = {k: redact(v) if isinstance(v, str) else v for k, v in access.items()}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus the access fields if any."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            document.update(access)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            document["exc_info"] = record.exc_text
        if record.stack_info:
            document["stack_info"] = record.stack_info
        return orjson.dumps(document, default=str).decode()


def make_formatter(fmt: LogFormat) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT)


def configure_logging(
    level: str = "info", fmt: LogFormat = "text", *, stream: IO[str] | None = None
) -> logging.Handler:
    """Install codexgate's handler on the root logger (replacing one installed earlier)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "codexgate", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.codexgate = True  # type: ignore[attr-defined]
    handler.setFormatter(make_formatter(fmt))
    handler.addFilter(RedactionFilter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Handlers someone else put on the root logger (a test's log capture) get the filter too.
    for other in root.handlers:
        if not any(isinstance(f, RedactionFilter) for f in other.filters):
            other.addFilter(RedactionFilter())
    for name in ("uvicorn", "uvicorn.error"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    access = logging.getLogger("uvicorn.access")
    access.handlers.clear()
    access.propagate = False
    access.disabled = True
    return handler


_access_logger = logging.getLogger(ACCESS_LOGGER)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def log_request(
    method: str,
    path: str,
    status: int,
    *,
    model: str | None = None,
    input_tokens: int = 0,
    cached_tokens: int = 0,
    output_tokens: int = 0,
    reasoning_tokens: int = 0,
    ttft_ms: float | None = None,
    duration_ms: float | None = None,
    request_id: str | None = None,
    key_name: str | None = None,
    stream: bool | None = None,
    error_code: str | None = None,
) -> None:
    """The one access line for a request. ``path`` is the URL path only (never the query string)."""
    logger = _access_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    fields: dict[str, Any] = {
        "method": method,
        "path": path,
        "status": status,
        "model": model,
        "stream": stream,
        "input_tokens": input_tokens,
        "cached_tokens": cached_tokens,
        "output_tokens": output_tokens,
        "reasoning_tokens": reasoning_tokens,
        "ttft_ms": None if ttft_ms is None else round(ttft_ms, 1),
        "duration_ms": None if duration_ms is None else round(duration_ms, 1),
        "request_id": request_id,
        "key_name": key_name,
        "error_code": error_code,
    }
    text = (
        f"{method} {path} {status} model={model or '-'} "
        f"tokens={input_tokens}/{cached_tokens}/{output_tokens}/{reasoning_tokens} "
        f"ttft={_number(ttft_ms)}ms duration={_number(duration_ms)}ms request_id={request_id or '-'}"
    )
    if key_name:
        text += f" key={key_name}"
    if error_code:
        text += f" error={error_code}"
    logger.info("%s", text, extra={"access": fields})


def log_usage(method: str, path: str, record: UsageRecord) -> None:
    """:func:`log_request` from the usage record the server also submits to the writer."""
    log_request(
        method,
        path,
        record.status,
        model=record.model or None,
        input_tokens=record.input_tokens,
        cached_tokens=record.cached_tokens,
        output_tokens=record.output_tokens,
        reasoning_tokens=record.reasoning_tokens,
        ttft_ms=record.ttft_ms,
        duration_ms=record.duration_ms,
        request_id=record.request_id,
        key_name=record.key_name,
        stream=record.stream,
        error_code=record.error_code,
    )
