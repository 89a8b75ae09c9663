"""KeyStore: key format, hashes only on disk, private files, reload on change, constant-time compare."""

from __future__ import annotations

import hmac
import os
import re
import stat
import time
from pathlib import Path

import pytest

from codexgate.storage import api_keys
from codexgate.storage.api_keys import KeyStore, KeyStoreError

KEY_PATTERN = re.compile(r"^cg-[A-Za-z0-9_-]{43}$")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_returns_a_key_and_stores_only_its_hash(tmp_path: Path) -> None:
    path = tmp_path / "home" / "keys.json"
    store = KeyStore(path)
    key = store.create("laptop")
    assert KEY_PATTERN.match(key) and len(key) >= 32
    text = path.read_text()
    assert key not in text and key[3:] not in text
    assert api_keys.hash_key(key).hex() in text
    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    [info] = store.list()
    assert info.name == "laptop" and info.id.startswith("key_") and abs(info.created_at - time.time()) < 60


def test_verify_list_and_revoke_by_name_or_id(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    assert not store.has_keys()
    first, second = store.create("a"), store.create("b")
    assert first != second
    assert store.has_keys()
    assert store.verify(first) is not None and store.verify(first).name == "a"  # type: ignore[union-attr]
    assert store.verify(second).name == "b"  # type: ignore[union-attr]
    assert store.verify("cg-" + "x" * 43) is None
    assert store.verify("") is None
    b_id = next(info.id for info in store.list() if info.name == "b")
    assert store.revoke(b_id) is True
    assert store.verify(second) is None
    assert store.revoke("a") is True
    assert store.revoke("a") is False
    assert not store.has_keys()
    assert store.list() == []


@pytest.mark.parametrize("name", ["", "   ", "x" * 65, "tab\there"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyStoreError):
        KeyStore(tmp_path / "keys.json").create(name)


def test_duplicate_name_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    store.create("ci")
    with pytest.raises(KeyStoreError, match="already exists"):
        store.create("ci")


def test_a_running_store_sees_keys_created_and_revoked_elsewhere_within_one_second(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    server = KeyStore(path)  # what the running gateway holds
    cli = KeyStore(path)  # what `codexgate keys` uses (another process in real life)
    assert not server.has_keys()

    key = cli.create("late")
    started = time.monotonic()
    while server.verify(key) is None:
        assert time.monotonic() - started < 1.0, "new key not seen within 1 s"
        time.sleep(0.02)

    cli.revoke("late")
    started = time.monotonic()
    while server.verify(key) is not None:
        assert time.monotonic() - started < 1.0, "revoked key still accepted after 1 s"
        time.sleep(0.02)
    assert not server.has_keys()


def test_the_hot_path_stats_the_file_at_most_every_quarter_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key = store.create("k")
    calls = 0
    real_stat = os.stat

    def counting_stat(target: object, *args: object, **kwargs: object) -> os.stat_result:
        nonlocal calls
        if Path(str(target)) == path:
            calls += 1
        return real_stat(target, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "stat", counting_stat)
    started = time.monotonic()
    for _ in range(20_000):
        assert store.verify(key) is not None
    elapsed = time.monotonic() - started
    assert calls <= elapsed / api_keys.RELOAD_CHECK_INTERVAL + 2


def test_verify_compares_every_stored_hash_with_compare_digest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KeyStore(tmp_path / "keys.json")
    keys = [store.create(f"k{i}") for i in range(4)]
    compared: list[tuple[bytes, bytes]] = []
    real_compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real_compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert store.verify(keys[0]).name == "k0"  # type: ignore[union-attr]
    # No early exit on the first match: every stored hash is compared, whichever key matched.
    assert len(compared) == 4
    compared.clear()
    assert store.verify("cg-wrong") is None
    assert len(compared) == 4


def test_a_corrupt_keys_file_fails_closed(tmp_path: Path) -> None:
    path = tmp_path / "keys.json"
    store = KeyStore(path)
    key = store.create("k")
    path.write_text("{not json")
    store._next_check = 0.0  # skip the reload interval
    assert store.has_keys() is True
    assert store.verify(key) is None
    with pytest.raises(KeyStoreError):
        store.create("other")
    with pytest.raises(KeyStoreError):
        store.list()
