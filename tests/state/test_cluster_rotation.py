"""Rotating ``secret_key``: an instance started with the new key and the old one among ``previous_secret_keys``
re-seals the stored credentials and the shared signing key under the new key, so the old key can then go."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from codexgate.server.anthropic_support import cluster_thinking_key
from codexgate.state import RedisState, SecretBox
from codexgate.state.cluster import Cluster
from tests.services import RedisServer

OLD = "rotation-test-old-secret-key-0123456789"
NEW = "rotation-test-new-secret-key-9876543210"


def cluster_of(server: RedisServer, prefix: str, box: SecretBox) -> Cluster:
    return Cluster(RedisState.from_url(server.url, prefix=prefix), box, probe_interval=0.1)


async def test_an_instance_with_previous_keys_reseals_everything_under_the_new_key(
    redis_server: RedisServer, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    old_box, new_box = SecretBox(OLD), SecretBox(NEW, previous_keys=[OLD])
    before = cluster_of(redis_server, redis_prefix, old_box)
    await before.start()
    document = {"tokens": {"access_token": "at", "refresh_token": "rt"}, "last_refresh": "2026-12-01T00:00:00Z"}
    await before.credentials.store_credentials("acct:user", document)
    signing_key = await cluster_thinking_key(before)
    await before.close()

    caplog.set_level(logging.INFO, logger="codexgate.state")
    rotated = cluster_of(redis_server, redis_prefix, new_box)
    await rotated.start()
    try:
        deadline = time.monotonic() + 5
        while "re-sealed under the current key" not in caplog.text:
            assert time.monotonic() < deadline, "the rotation did not run"
            await asyncio.sleep(0.02)
        assert await cluster_thinking_key(rotated) == signing_key  # opened with the old key, re-sealed
    finally:
        await rotated.close()

    only_new = cluster_of(redis_server, redis_prefix, SecretBox(NEW))  # the old key dropped from the settings
    await only_new.start()
    try:
        assert await only_new.credentials.load_credentials("acct:user") == document
        assert await cluster_thinking_key(only_new) == signing_key
    finally:
        await only_new.close()


async def test_a_signing_key_sealed_under_an_unknown_key_is_replaced_not_fatal(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    first = cluster_of(redis_server, redis_prefix, SecretBox(OLD))
    await first.start()
    lost = await cluster_thinking_key(first)
    await first.close()
    other = cluster_of(redis_server, redis_prefix, SecretBox(NEW))  # the old key is gone for good
    await other.start()
    try:
        replacement = await cluster_thinking_key(other)
        assert replacement != lost and len(replacement) == len(lost)
        assert await cluster_thinking_key(other) == replacement
    finally:
        await other.close()
