"""Fixtures of the shared-state tests: real servers from tests/services.py and both implementations."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from codexgate.state import LocalState, RedisState, SharedState
from tests.services import RedisServer, own_redis, postgres_server, redis_prefix, redis_server

__all__ = ["own_redis", "postgres_server", "redis_prefix", "redis_server"]


@pytest.fixture(params=["local", "redis"])
async def state(
    request: pytest.FixtureRequest, redis_server: RedisServer, redis_prefix: str
) -> AsyncIterator[SharedState]:
    """Each test using it runs once on the in-process state and once on a real Redis."""
    shared: SharedState = (
        LocalState() if request.param == "local" else RedisState.from_url(redis_server.url, prefix=redis_prefix)
    )
    try:
        yield shared
    finally:
        await shared.close()


@pytest.fixture
async def redis_state(redis_server: RedisServer, redis_prefix: str) -> AsyncIterator[RedisState]:
    shared = RedisState.from_url(redis_server.url, prefix=redis_prefix)
    try:
        yield shared
    finally:
        await shared.close()
