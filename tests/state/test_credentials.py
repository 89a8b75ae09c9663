"""Credentials sealed in the shared store: round trip, rotation, no plaintext in Redis, older never wins."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from typing import Any

import pytest

from codexgate.state import CredentialStore, RedisState, SecretBox, SecretBoxError, SharedState, version_of
from tests.services import RedisServer

# Built at run time so that no token-shaped literal sits in the source; unique per test run.
SECRET_MARK = "tok" + "en_" + format(random.getrandbits(64), "x")

# Deriving a key costs a few tens of milliseconds (scrypt): build the boxes once.
OLD_KEY, NEW_KEY = "old-secret-key-for-tests-" + "a" * 12, "new-secret-key-for-tests-" + "b" * 12
OLD_BOX = SecretBox(OLD_KEY)
NEW_BOX = SecretBox(NEW_KEY)
ROTATED_BOX = SecretBox(NEW_KEY, previous_keys=[OLD_KEY])


def document(at: dt.datetime, tag: str = "") -> dict[str, Any]:
    return {
        "OPENAI_API_KEY": None,
        "tokens": {
            "access_token": f"access-{SECRET_MARK}-{tag}",
            "refresh_token": f"refresh-{SECRET_MARK}-{tag}",
            "id_token": f"id-{SECRET_MARK}-{tag}",
            "account_id": "acct-1",
        },
        "last_refresh": at.isoformat().replace("+00:00", "Z"),
    }


T0 = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)


async def test_round_trip_on_both_implementations(state: SharedState) -> None:
    store = CredentialStore(state, NEW_BOX)
    assert await store.load_credentials("acct-1") is None
    original = document(T0, "a")
    assert await store.store_credentials("acct-1", original) is True
    assert await store.load_credentials("acct-1") == original
    assert await store.accounts() == ["acct-1"]


async def test_an_older_write_never_replaces_newer_credentials(state: SharedState) -> None:
    store = CredentialStore(state, NEW_BOX)
    newer, older = document(T0 + dt.timedelta(minutes=5), "newer"), document(T0, "older")
    assert await store.store_credentials("acct-1", newer) is True
    assert await store.store_credentials("acct-1", older) is False
    assert await store.load_credentials("acct-1") == newer


async def test_racing_writers_from_two_instances_leave_the_newest(redis_server: RedisServer, redis_prefix: str) -> None:
    instances = [RedisState.from_url(redis_server.url, prefix=redis_prefix) for _ in range(2)]
    stores = [CredentialStore(instance, NEW_BOX) for instance in instances]
    try:
        moments = [T0 + dt.timedelta(seconds=n) for n in range(40)]
        random.shuffle(moments)
        await asyncio.gather(
            *(stores[n % 2].store_credentials("acct-1", document(at, str(at.second))) for n, at in enumerate(moments))
        )
        newest = max(moments)
        assert await stores[0].load_credentials("acct-1") == document(newest, str(newest.second))
    finally:
        for instance in instances:
            await instance.close()


async def test_no_token_is_stored_in_plaintext(redis_state: RedisState) -> None:
    store = CredentialStore(redis_state, NEW_BOX)
    for n in range(3):
        await store.store_credentials(f"acct-{n}", document(T0, f"p{n}"))
    seen = 0
    client = redis_state.client
    async for key in client.scan_iter(match="*"):
        raw_kind = await client.type(key)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else raw_kind
        blobs: list[Any]
        if kind == "string":
            blobs = [await client.get(key) or b""]
        elif kind == "hash":
            blobs = [part for pair in (await client.hgetall(key)).items() for part in pair]
        elif kind == "list":
            blobs = await client.lrange(key, 0, -1)
        elif kind == "set":
            blobs = list(await client.smembers(key))
        elif kind == "zset":
            blobs = await client.zrange(key, 0, -1)
        else:
            blobs = []
        for blob in [key, *blobs]:
            assert SECRET_MARK.encode() not in blob
            assert b"access-" not in blob and b"refresh_token" not in blob
        seen += 1
    assert seen >= 6  # three sealed documents and their versions (other tests' keys are checked too)


async def test_rotation_opens_old_values_and_rewraps_them(redis_state: RedisState) -> None:
    before = document(T0, "rot")
    await CredentialStore(redis_state, OLD_BOX).store_credentials("acct-1", before)
    with pytest.raises(SecretBoxError, match="not configured"):
        await CredentialStore(redis_state, NEW_BOX).load_credentials("acct-1")

    rotated = CredentialStore(redis_state, ROTATED_BOX)
    assert await rotated.load_credentials("acct-1") == before
    assert await rotated.rewrap_all() == 1
    assert await rotated.rewrap_all() == 0  # nothing left under the old key
    assert await CredentialStore(redis_state, NEW_BOX).load_credentials("acct-1") == before
    with pytest.raises(SecretBoxError):
        await CredentialStore(redis_state, OLD_BOX).load_credentials("acct-1")
    after = document(T0 + dt.timedelta(hours=1), "after")
    assert await rotated.store_credentials("acct-1", after)
    sealed = await redis_state.get("credentials", "acct-1")
    assert sealed is not None and ROTATED_BOX.key_id_of(sealed) == NEW_BOX.key_id


async def test_a_document_moved_to_another_account_or_tampered_does_not_open(state: SharedState) -> None:
    store = CredentialStore(state, NEW_BOX)
    await store.store_credentials("acct-1", document(T0))
    sealed = await state.get("credentials", "acct-1")
    assert sealed is not None
    await state.put("credentials", "acct-2", sealed)
    with pytest.raises(SecretBoxError):
        await store.load_credentials("acct-2")
    flipped = sealed[:-3] + (b"A" if sealed[-3:-2] != b"A" else b"B") + sealed[-2:]
    await state.put("credentials", "acct-1", flipped)
    with pytest.raises(SecretBoxError):
        await store.load_credentials("acct-1")


def test_the_box_refuses_an_empty_key_and_seals_differently_each_time() -> None:
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="secret_key"):
            SecretBox(empty)
    one, two = NEW_BOX.seal(b"same", "c"), NEW_BOX.seal(b"same", "c")
    assert one != two and one.startswith(f"cg1.{NEW_BOX.key_id}.".encode())
    assert NEW_BOX.open(one, "c") == NEW_BOX.open(two, "c") == b"same"
    assert OLD_BOX.key_id != NEW_BOX.key_id and NEW_BOX.key_id == ROTATED_BOX.key_id
    with pytest.raises(SecretBoxError):
        NEW_BOX.open(b"plain text", "c")


def test_version_of_reads_last_refresh() -> None:
    assert version_of({"last_refresh": "2026-11-30T12:00:00Z"}) == round(T0.timestamp() * 1_000_000)
    assert version_of({"last_refresh": "2026-11-30T12:00:00.5+00:00"}) == round(T0.timestamp() * 1_000_000) + 500_000
    assert version_of({}) == 0
    assert version_of({"last_refresh": "yesterday"}) == 0
