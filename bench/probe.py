"""A lean HTTP/1.1 streaming client on raw asyncio sockets, so the client is never the bottleneck.

Each request opens a fresh connection (``Connection: close``), sends a prebuilt request, notes when
the first answer token arrives (a marker in the bytes: ``output_text.delta`` for the Responses
stream, ``"content"`` for chat chunks) and reads until the server closes. Nothing is parsed beyond
the status line: the gateway's correctness is the test suite's business, not the benchmark's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import orjson

HOST = "127.0.0.1"
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class Target:
    """One endpoint with its prebuilt request bytes and the marker of the first token."""

    name: str
    port: int
    request: bytes
    marker: bytes

    @classmethod
    def post(cls, name: str, port: int, path: str, body: object, headers: dict[str, str], marker: bytes) -> Target:
        payload = orjson.dumps(body)
        lines = [f"POST {path} HTTP/1.1", f"host: {HOST}:{port}"]
        lines += [f"{key}: {value}" for key, value in headers.items() if key.lower() not in ("host", "content-length")]
        lines += [f"content-length: {len(payload)}", "connection: close", "", ""]
        return cls(name, port, "\r\n".join(lines).encode("latin-1") + payload, marker)


class StreamError(Exception):
    pass


class _Probe(asyncio.Protocol):
    def __init__(self, target: Target, started: float, done: asyncio.Future[None]) -> None:
        self.request = target.request
        self.marker = target.marker
        self.keep = len(target.marker) - 1
        self.started = started
        self.done = done
        self.first: float | None = None  # seconds from connect to the first token
        self.status: bytes | None = None
        self.received = 0
        self.tail = b""
        self.transport: asyncio.Transport | None = None
        self.first_token = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's transports are not subclasses
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if self.status is None:
            self.status = data[9:12]
        self.received += len(data)
        if self.first is None:
            window = self.tail + data
            if self.marker in window:
                self.first = time.perf_counter() - self.started
                if not self.first_token.done():
                    self.first_token.set_result(None)
            else:
                self.tail = window[-self.keep :]

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)
        if not self.first_token.done():
            self.first_token.set_result(None)


async def _open(target: Target) -> tuple[_Probe, asyncio.Future[None]]:
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    started = time.perf_counter()
    _transport, probe = await loop.create_connection(lambda: _Probe(target, started, done), HOST, target.port)
    return probe, done


def _check(probe: _Probe, target: Target) -> float:
    if probe.status != b"200":
        raise StreamError(f"{target.name}: status {probe.status!r}, {probe.received} bytes")
    if probe.first is None:
        raise StreamError(f"{target.name}: the stream ended without a token ({probe.received} bytes)")
    return probe.first


async def stream_once(target: Target) -> float:
    """One streamed request read to its end; seconds from connecting to the first token."""
    probe, done = await _open(target)
    try:
        await asyncio.wait_for(done, REQUEST_TIMEOUT)
    finally:
        if probe.transport is not None:
            probe.transport.abort()
    return _check(probe, target)


async def sequential(target: Target, count: int) -> list[float]:
    return [await stream_once(target) for _ in range(count)]


async def burst(target: Target, concurrency: int, total: int) -> tuple[float, list[float]]:
    """``total`` requests, ``concurrency`` at a time; (wall seconds, time to first token of each)."""
    remaining = total
    ttfts: list[float] = []

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            ttfts.append(await stream_once(target))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - started, ttfts


class OpenStreams:
    """``count`` streams held open at once, each until its first token arrived; then closed."""

    def __init__(self, target: Target, count: int, connect_parallelism: int = 50) -> None:
        self.target = target
        self.count = count
        self.parallelism = connect_parallelism
        self.probes: list[_Probe] = []

    async def __aenter__(self) -> OpenStreams:
        gate = asyncio.Semaphore(self.parallelism)

        async def one() -> None:
            async with gate:
                probe, _done = await _open(self.target)
                self.probes.append(probe)
            await asyncio.wait_for(asyncio.shield(probe.first_token), REQUEST_TIMEOUT)
            _check(probe, self.target)

        try:
            await asyncio.gather(*(one() for _ in range(self.count)))
        except BaseException:
            await self.__aexit__()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        for probe in self.probes:
            if probe.transport is not None:
                probe.transport.abort()
        await asyncio.sleep(0.5)  # let the gateway see the disconnects
