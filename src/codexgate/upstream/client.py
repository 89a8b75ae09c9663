"""The Codex backend client: one aiohttp session per process, streaming bytes out.

``open_stream`` sends a shaped Responses request and returns once the backend answered with a
streaming 200; everything before that point (fresh credentials, retries on connect errors and 5xx,
one refresh-and-retry on 401, mapping HTTP errors) happens here, so the HTTP layer either gets a
live stream or an :class:`APIError` with the right status. The stream's bytes go to the protocol
core untouched: each read hands over whatever bytes have arrived since the last one.

Compression: every request asks for ``accept-encoding: identity`` and the session never
decompresses (``auto_decompress=False``), so a small compressed body can never expand into gigabytes
here; an answer that arrives compressed anyway is an ``upstream_protocol_error`` (502). SSE text
compresses well, but a stream's pace is set by the model's token rate, not by the bandwidth of the
user's link, so asking for identity costs bytes on the wire and no latency we could see; the
benchmark (whose simulator never compresses) is unchanged by it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
import orjson

from codexgate.config import Settings
from codexgate.errors import APIError
from codexgate.upstream.errors import (
    broken_mid_stream,
    map_http_error,
    unexpected_encoding,
    unreachable,
    upstream_timeout,
)
from codexgate.upstream.headers import upstream_headers
from codexgate.upstream.read_watch import ReadWatch

__all__ = [
    "CredentialsLike",
    "TokenSource",
    "UpstreamClient",
    "UpstreamStream",
    "codex_headers",
    "newer_client_error",
]

logger = logging.getLogger("codexgate.upstream")
monotonic = time.monotonic

RETRY_BACKOFF = (0.25, 0.75)
#: after the last event, how long and how much more of the body is read so the connection can be reused
DRAIN_TIMEOUT = 1.0
DRAIN_LIMIT = 64 * 1024
#: the largest model list read from the backend
MODELS_LIMIT = 8 * 1024 * 1024


class CredentialsLike(Protocol):
    @property
    def access_token(self) -> str: ...
    @property
    def account_id(self) -> str | None: ...


async def read_bounded(response: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    """A unary answer's whole body, uncompressed as asked, at most ``limit`` bytes (else an error:
    nothing the backend sends grows without bound)."""
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise unreachable(f"{what} came compressed ({encoding[:40]})")
    parts: list[bytes] = []
    total = 0
    while chunk := await response.content.readany():
        total += len(chunk)
        if total > limit:
            raise unreachable(f"{what} is larger than {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


class TokenSource(Protocol):
    async def get(self) -> Any: ...
    async def refresh_after_unauthorized(self, rejected: Any) -> Any: ...


def codex_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The backend's ``x-codex-*`` headers (rate-limit windows, plan), by lower-case name.

    Only values that can be sent on as they are (printable ASCII, at most 1 KiB) are kept: anything
    else from the backend is dropped rather than failing the answer it came with.
    """
    return {
        key.lower(): value
        for key, value in headers.items()
        if key[:8].lower() == "x-codex-" and len(value) <= 1024 and value.isascii() and value.isprintable()
    }


def newer_client_error(error: APIError, client_version: str) -> APIError:
    """The backend's "requires a newer version of Codex" answer as a 400 naming ``client_version``;
    any other error unchanged."""
    if error.status_code >= 500 or "newer version" not in error.message.lower():
        return error
    return APIError(
        400,
        f"The Codex backend answered that this model requires a newer Codex client ({error.message.strip()}). "
        f"The gateway presents client version {client_version}: raise the setting `client_version`.",
        type="invalid_request_error",
        param="model",
        code="client_version_too_old",
        headers=error.headers,
    )


@dataclass
class UpstreamStream:
    """A live streaming answer. Read it (:meth:`read`, or :meth:`chunks`), then :meth:`close` (always)."""

    response: aiohttp.ClientResponse
    request_id: str | None
    started_at: float
    read_timeout: float = 300.0
    #: called once when the stream is closed (the account pool's stream count)
    on_close: Callable[[], None] | None = None
    #: the read timeout of this stream (see :mod:`codexgate.upstream.read_watch`), running from the open.
    watch: ReadWatch = field(init=False)
    closed: bool = field(init=False, default=False)
    _readany: Callable[[], Awaitable[bytes]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.watch = ReadWatch(self.response.content, self.read_timeout)
        self.watch.start()
        self._readany = self.response.content.readany

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    async def read(self) -> bytes:
        """Whatever bytes have arrived (waiting for some), ``b""`` at the end.

        The wait counts against the read timeout (:attr:`watch`). A transport failure raises the
        upstream's :class:`APIError`: ``upstream_timeout`` (504) after ``read_timeout`` s without bytes,
        ``upstream_disconnected`` (502) for a broken connection. What :meth:`interrupt` was given is
        raised as it is."""
        watch = self.watch
        watch.waiting_since = monotonic()
        try:
            data = await self._readany()
        except TimeoutError:
            raise upstream_timeout(self.read_timeout) from None
        except aiohttp.ClientError as exc:
            raise broken_mid_stream(exc) from None
        watch.waiting_since = 0.0
        return data

    def unread(self, data: bytes) -> None:
        """Push ``data`` back: the next :meth:`read` returns it before the socket's bytes (nothing is
        added to the reads after that one)."""
        if not data:
            return
        readany = self._readany

        async def pushed_back() -> bytes:
            self._readany = readany
            return data

        self._readany = pushed_back

    def codex_headers(self) -> dict[str, str]:
        """The ``x-codex-*`` headers, passed on to the client."""
        return codex_headers(self.response.headers)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body, read by read (:meth:`read`)."""
        read = self.read
        while data := await read():
            yield data

    async def drain(self, *, limit: int = DRAIN_LIMIT) -> bool:
        """After the last event: read what is left of the body (at most ``limit`` bytes, for
        :data:`DRAIN_TIMEOUT` s), so that a well-behaved backend's connection can be reused.
        True when the body ended."""
        content = self.response.content
        if content.at_eof():
            return True
        read = 0
        try:
            async with asyncio.timeout(DRAIN_TIMEOUT):
                while read <= limit:
                    data = await content.readany()
                    if not data:
                        return True
                    read += len(data)
        except (TimeoutError, aiohttp.ClientError, OSError):
            return False
        except Exception:  # an interrupt() set while draining: the answer is over anyway
            return False
        return False

    def interrupt(self, exc: Exception) -> None:
        """Make the pending (or next) read raise ``exc``; :meth:`close` then drops the connection."""
        self.response.content.set_exception(exc)

    def close(self, *, complete: bool = False) -> None:
        """Release the connection for reuse after a complete read, else close it (cancels upstream).
        Only the first call acts."""
        if self.closed:
            return
        self.closed = True
        self.watch.stop()
        if self.on_close is not None:
            self.on_close()
        if complete and self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()


class UpstreamClient:
    def __init__(self, settings: Settings, tokens: TokenSource) -> None:
        self.settings = settings
        self.tokens = tokens
        self.responses_url = settings.upstream.upstream_url.rstrip("/") + "/responses"
        self.compact_url = self.responses_url + "/compact"
        self._session: aiohttp.ClientSession | None = None
        #: called soon (not on the way to the first token) with every upstream answer's headers.
        self.on_headers: Callable[[Mapping[str, str]], None] | None = None

    async def start(self) -> None:
        if self._session is not None:
            return
        cap = self.settings.limits.max_concurrent_streams
        connector = aiohttp.TCPConnector(limit=cap, limit_per_host=cap, ttl_dns_cache=300, keepalive_timeout=30)
        # No sock_read: it re-arms a timer on every socket read. The wait for the answer's head is
        # bounded in open_stream, and the body's reads by each stream's ReadWatch.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.settings.upstream.connect_timeout)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=timeout, auto_decompress=False, trust_env=False
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("UpstreamClient.start() was not called")
        return self._session

    async def open_stream(
        self,
        body: dict[str, Any],
        *,
        session_id: str,
        request_id: str,
        client_headers: Mapping[str, str] | None = None,
        tokens: TokenSource | None = None,
    ) -> UpstreamStream:
        """POST ``body`` to ``{base}/responses``; ``client_headers`` (a Codex client's own, checked) go too;
        ``tokens``: the credentials of the account chosen for this request (default: :attr:`tokens`)."""
        payload = orjson.dumps(body)
        read_timeout = self.settings.upstream.read_timeout
        if tokens is None:
            tokens = self.tokens
        credentials = await tokens.get()
        refreshed = False
        attempt = 0
        deadline = time.monotonic() + self.settings.upstream.retry_budget
        while True:
            headers = self._headers(credentials, session_id, request_id, client_headers)
            started = time.monotonic()
            try:
                async with asyncio.timeout(read_timeout):  # for the head; the body has its ReadWatch
                    response = await self.session.post(self.responses_url, data=payload, headers=headers)
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
                # TimeoutError is an OSError: the head's timeout, unless it was the connect's
                if isinstance(exc, TimeoutError) and not isinstance(exc, aiohttp.ConnectionTimeoutError):
                    raise upstream_timeout(read_timeout) from None
                reason = type(exc).__name__
                if self._may_retry(attempt, deadline):
                    logger.info("upstream connect failed (%s), retrying (request %s)", reason, request_id)
                    await asyncio.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                    attempt += 1
                    continue
                raise unreachable(reason) from None

            if self.on_headers is not None:  # bookkeeping: after the first bytes reach the client
                asyncio.get_running_loop().call_soon(self.on_headers, response.headers)
            upstream_request_id = response.headers.get("x-request-id")
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):
                response.close()
                raise unexpected_encoding(encoding)
            if response.status == 200:
                return UpstreamStream(response, upstream_request_id, started, read_timeout)

            error_body = await self._read_error_body(response, read_timeout)
            status = response.status
            if status == 401 and not refreshed:
                refreshed = True
                logger.info("upstream answered 401; refreshing credentials once (request %s)", request_id)
                credentials = await tokens.refresh_after_unauthorized(credentials)
                continue
            if status >= 500 and self._may_retry(attempt, deadline):
                logger.info("upstream answered %s, retrying (request %s)", status, request_id)
                await asyncio.sleep(RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)])
                attempt += 1
                continue
            error = newer_client_error(
                map_http_error(status, error_body, response.headers), self.settings.upstream.client_version
            )
            error.headers.update(codex_headers(response.headers))  # a 429's windows, for the client too
            logger.info(
                "upstream answered %s (%s) for request %s (upstream id %s)",
                status,
                error.code,
                request_id,
                upstream_request_id,
            )
            raise error

    async def fetch_models(self) -> list[Mapping[str, Any]]:
        """``GET {upstream_url}/models?client_version=X``: the backend's model entries."""
        url = self.settings.upstream.upstream_url.rstrip("/") + "/models"
        params = {"client_version": self.settings.upstream.client_version}
        credentials = await self.tokens.get()
        for attempt in range(2):
            headers = self._headers(credentials, "models", "models", accept="application/json")
            timeout = aiohttp.ClientTimeout(
                total=self.settings.upstream.read_timeout, sock_connect=self.settings.upstream.connect_timeout
            )
            try:
                async with self.session.get(url, params=params, headers=headers, timeout=timeout) as response:
                    body = await read_bounded(response, MODELS_LIMIT, "the model list")
                    status = response.status
                    response_headers = response.headers
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise unreachable(type(exc).__name__) from None
            if status == 401 and attempt == 0:
                credentials = await self.tokens.refresh_after_unauthorized(credentials)
                continue
            if status != 200:
                raise map_http_error(status, body, response_headers)
            try:
                data = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise unreachable("the model list is not JSON") from None
            entries = data.get("models") if isinstance(data, dict) else None
            if not isinstance(entries, list):
                raise unreachable("the model list has no `models` array")
            return [entry for entry in entries if isinstance(entry, Mapping)]
        raise unreachable("unauthorized")  # pragma: no cover - the loop returns or raises

    async def compact(
        self,
        body: dict[str, Any],
        *,
        session_id: str,
        request_id: str,
        client_headers: Mapping[str, str] | None = None,
    ) -> tuple[int, bytes, dict[str, str]]:
        """``POST {base}/responses/compact`` (a unary JSON call): ``(200, body, x-codex headers)`` as the
        backend answered, or its error mapped to an :class:`APIError`. One refresh-and-retry on 401."""
        payload = orjson.dumps(body)
        credentials = await self.tokens.get()
        timeout = aiohttp.ClientTimeout(
            total=self.settings.upstream.read_timeout, sock_connect=self.settings.upstream.connect_timeout
        )
        for attempt in range(2):
            headers = self._headers(credentials, session_id, request_id, client_headers, accept="application/json")
            try:
                async with self.session.post(
                    self.compact_url, data=payload, headers=headers, timeout=timeout
                ) as answer:
                    status = answer.status
                    data = await read_bounded(answer, self.settings.limits.max_answer_size, "the compacted history")
                    answer_headers = answer.headers
            except TimeoutError:
                raise upstream_timeout(self.settings.upstream.read_timeout) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise unreachable(type(exc).__name__) from None
            if self.on_headers is not None:
                self.on_headers(answer_headers)
            if status == 401 and attempt == 0:
                credentials = await self.tokens.refresh_after_unauthorized(credentials)
                continue
            if status != 200:
                error = newer_client_error(
                    map_http_error(status, data, answer_headers), self.settings.upstream.client_version
                )
                error.headers.update(codex_headers(answer_headers))
                raise error
            return status, data, codex_headers(answer_headers)
        raise unreachable("unauthorized")  # pragma: no cover - the loop returns or raises

    def _headers(
        self,
        credentials: Any,
        session_id: str,
        request_id: str,
        client_headers: Mapping[str, str] | None = None,
        *,
        accept: str | None = None,
    ) -> dict[str, str]:
        """The headers of one backend call (the pinned Codex CLI's), asking for an uncompressed answer."""
        headers = upstream_headers(
            access_token=credentials.access_token,
            account_id=credentials.account_id,
            session_id=session_id,
            originator=self.settings.upstream.originator,
            client_version=self.settings.upstream.client_version,
            request_id=request_id,
            client_headers=client_headers,
        )
        if accept is not None:
            headers["accept"] = accept
        headers["accept-encoding"] = "identity"
        return headers

    def _may_retry(self, attempt: int, deadline: float) -> bool:
        if attempt >= self.settings.upstream.upstream_retries:
            return False
        backoff = RETRY_BACKOFF[min(attempt, len(RETRY_BACKOFF) - 1)]
        return time.monotonic() + backoff < deadline

    @staticmethod
    async def _read_error_body(response: aiohttp.ClientResponse, read_timeout: float) -> bytes:
        try:
            async with asyncio.timeout(read_timeout):
                return await response.content.read(64 * 1024)
        except (aiohttp.ClientError, TimeoutError):
            return b""
        finally:
            response.close()
