"""Log set-up: text or JSON lines on stderr, one access line per request, secrets masked.

:func:`configure_logging` installs one handler on the root logger, with a formatter for
``CODEXGATE_LOG_FORMAT`` (``text`` or ``json``) and a :class:`RedactionFilter` that masks bearer
values, JWT-looking strings, ``cg-``/``sk-`` keys and ``*_token=``/``api_key:`` values in every
message, argument and traceback that goes through it (defence in depth: nothing should log a
secret in the first place). uvicorn's own loggers propagate to that handler and its access log is
disabled in favour of :func:`log_request`.

Client-chosen text (a model name, a path, an upstream message) can neither stall the event loop
nor forge a log line: the filter first cuts every message, access field and traceback to a bound
(:func:`bounded`: the regexes never run on more than a few KiB), then masks secrets, then escapes
control characters (:func:`escape_controls`: a CR/LF shows as ``\\r``/``\\n``, ESC as ``\\x1b``),
so one record is one line; traceback lines keep their line breaks but are indented, so none of
them can pass for a record of its own.

The server runs uvicorn with ``access_log=False, log_config=None`` (so uvicorn neither logs access
lines nor replaces this configuration) and calls :func:`log_request` (or :func:`log_usage`) once per
request, when the response (or stream) has ended.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from codexgate.storage.usage_db import UsageRecord

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "codexgate.access"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
MASK = "***"
FIELD_LIMIT = 1024  # characters of one access field (model, path, request id, ...)
MESSAGE_LIMIT = 16 * 1024  # characters of one log message
TRACEBACK_LIMIT = 64 * 1024  # characters of one traceback or stack
# Text just past a cut is masked together with what is kept: a secret that straddles the cut
# (all are far shorter than this) is masked whole, so no prefix of one is left behind.
_REDACTION_WINDOW = 16 * 1024
TRACEBACK_INDENT = "  "

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


def bounded(text: str, limit: int = FIELD_LIMIT) -> str:
    """``text`` cut to ``limit`` characters with a marker; what is kept has its secrets masked."""
    if len(text) <= limit:
        return text
    return redact(text[: limit + _REDACTION_WINDOW])[:limit] + f"...[cut: {len(text)} characters]"


# C0, DEL, C1 and the Unicode line/paragraph separators: anything a terminal or a log reader might
# take for a line break or a control sequence.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROLS_BUT_NEWLINE = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    named = _NAMED_ESCAPES.get(char)
    if named is not None:
        return named
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def escape_controls(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` on one line: control characters shown as escapes (``\\n``, ``\\r``, ``\\x1b``, ...).

    ``keep_newlines``: ``\\n`` stays a line break (everything else is still escaped)."""
    pattern = _CONTROLS_BUT_NEWLINE if keep_newlines else _CONTROLS
    return pattern.sub(_escape_one, text) if pattern.search(text) else text


def _safe_block(text: str) -> str:
    """A traceback or stack: bounded, masked, controls escaped except line breaks, lines indented."""
    text = escape_controls(redact(bounded(text, TRACEBACK_LIMIT)), keep_newlines=True)
    return TRACEBACK_INDENT + text.replace("\n", "\n" + TRACEBACK_INDENT)


class RedactionFilter(logging.Filter):
    """Bounds, masks and escapes the message, the access fields and any traceback of a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "codexgate_safe", False):
            return True  # already done by an earlier handler's filter (the record is shared)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep the raw text, still masked
            message = f"{bounded(str(record.msg), MESSAGE_LIMIT)} {bounded(str(record.args), MESSAGE_LIMIT)}"
        record.msg = escape_controls(redact(bounded(message, MESSAGE_LIMIT)))
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = _safe_block(record.exc_text)
        if record.stack_info:
            record.stack_info = _safe_block(record.stack_info)
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            record.__dict__["access"] = {
                key: redact(bounded(value)) if isinstance(value, str) else value for key, value in access.items()
            }
        record.__dict__["codexgate_safe"] = True
        return True


_JSON_LINE_BREAKS = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


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
        line = orjson.dumps(document, default=str).decode()
        # JSON allows these raw inside strings, but line readers (``str.splitlines``, JavaScript)
        # break lines at them: the same value, escaped.
        return _JSON_LINE_BREAKS.sub(_json_escape, line) if _JSON_LINE_BREAKS.search(line) else line


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
    account: str | None = None,
) -> None:
    """The one access line for a request. ``path`` is the URL path only (never the query string).

    Every string is cut to :data:`FIELD_LIMIT` here already, so a huge client-chosen value is never
    copied into the line (the filter then masks and escapes it)."""
    logger = _access_logger
    if not logger.isEnabledFor(logging.INFO):
        return
    method, path = bounded(method), bounded(path)
    model = None if model is None else bounded(model)
    request_id = None if request_id is None else bounded(request_id)
    key_name = None if key_name is None else bounded(key_name)
    error_code = None if error_code is None else bounded(error_code)
    account = None if account is None else bounded(account)
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
        "account": account,  # the pool account's alias (never a token or an email)
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
    if account:
        text += f" account={account}"
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
        account=record.account,
    )
