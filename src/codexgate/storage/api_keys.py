"""API keys for the gateway: ``$CODEXGATE_HOME/keys.json`` holds only their hashes.

A key is ``cg-`` + 43 characters of ``secrets.token_urlsafe(32)`` (256 bits, alphabet
``[A-Za-z0-9_-]``); it is shown once, by :meth:`KeyStore.create`, and never stored. The file keeps,
per key, an id, a name, the creation time, the key's SHA-256 (a plain hash is enough for keys this
random: there is nothing to brute-force) and, when any is set, its ``limits`` (budgets, allowed models
and accounts, expiry: :class:`codexgate.storage.budgets.KeyLimits`). A file written before limits
existed loads unchanged (no limits); :meth:`KeyStore.update` changes a key's limits.

The CLI (another process) writes the file atomically (0600, in a 0700 dir) under a lock; a running
server sees the change within 1 s because :meth:`KeyStore.verify` and :meth:`KeyStore.has_keys`
re-read the file when its identity (inode, size, mtime) changed, checking at most every
:data:`RELOAD_CHECK_INTERVAL` seconds, so the hot path costs one ``stat`` per 0.25 s.

A keys file that exists but cannot be read or parsed fails closed: the store reports that keys are
configured and accepts none, rather than opening the gateway to everyone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from codexgate.files import PRIVATE_FILE_MODE, atomic_write_bytes, ensure_private_dir
from codexgate.storage.key_limits import NO_LIMITS, KeyLimits

logger = logging.getLogger("codexgate.keys")

KEY_PREFIX = "cg-"
RELOAD_CHECK_INTERVAL = 0.25
FILE_VERSION = 1
MAX_NAME_LENGTH = 64


class KeyStoreError(Exception):
    """A key operation that cannot be done (bad or duplicate name, unreadable file)."""


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What is known about a key besides the key itself."""

    id: str
    name: str
    created_at: float
    limits: KeyLimits = NO_LIMITS


@dataclass(frozen=True, slots=True)
class StoredKey:
    """One stored key: its info and the SHA-256 of the key (never the key)."""

    info: KeyInfo
    digest: bytes


_FileIdentity = tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns
_InfoList = list[KeyInfo]
_KeyList = list[StoredKey]  # named here: inside KeyStore, ``list`` is a method


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode("utf-8")).digest()


def validate_name(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise KeyStoreError("a key needs a non-empty name")
    if len(cleaned) > MAX_NAME_LENGTH:
        raise KeyStoreError(f"a key name has at most {MAX_NAME_LENGTH} characters")
    if not cleaned.isprintable():
        raise KeyStoreError("a key name must be printable text")
    return cleaned


def parse_keys(raw: bytes) -> list[StoredKey]:
    """The keys of a keys document (the file's, or the shared store's); ValueError/KeyError/TypeError if bad."""
    document = orjson.loads(raw)
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError("not a keys document")
    keys: list[StoredKey] = []
    for entry in document["keys"]:
        if not isinstance(entry, dict):
            raise ValueError("a key entry is not an object")
        digest = bytes.fromhex(str(entry["sha256"]))
        if len(digest) != hashlib.sha256().digest_size:
            raise ValueError("a key hash has the wrong length")
        raw_limits = entry.get("limits")
        if raw_limits is not None and not isinstance(raw_limits, dict):
            raise ValueError("a key's limits are not an object")
        limits = KeyLimits.from_dict(raw_limits) if raw_limits else NO_LIMITS
        info = KeyInfo(
            id=str(entry["id"]),
            name=str(entry["name"]),
            created_at=float(entry["created_at"]),
            limits=NO_LIMITS if limits.empty else limits,
        )
        keys.append(StoredKey(info=info, digest=digest))
    return keys


def serialize_keys(keys: Sequence[StoredKey]) -> bytes:
    entries: list[dict[str, Any]] = []
    for k in keys:
        entry: dict[str, Any] = {"id": k.info.id, "name": k.info.name, "created_at": k.info.created_at}
        entry["sha256"] = k.digest.hex()
        limits = k.info.limits.to_dict()
        if limits:
            entry["limits"] = limits
        entries.append(entry)
    return orjson.dumps({"version": FILE_VERSION, "keys": entries}, option=orjson.OPT_INDENT_2)


def find_key(keys: Sequence[StoredKey], presented: str) -> KeyInfo | None:
    """The info of the stored key ``presented`` hashes to, else None.

    The presented key's hash is compared with every stored hash with ``hmac.compare_digest``, without
    stopping at a match, so the time taken does not depend on which key matched.
    """
    digest = hash_key(presented)
    found: KeyInfo | None = None
    for stored in keys:
        if hmac.compare_digest(digest, stored.digest):
            found = stored.info
    return found


def lookup(keys: Sequence[StoredKey], name_or_id: str) -> KeyInfo | None:
    for stored in keys:
        if name_or_id in (stored.info.id, stored.info.name):
            return stored.info
    return None


def add_key(keys: list[StoredKey], name: str, limits: KeyLimits, now: float) -> str:
    """Append a new key named ``name`` to ``keys`` and return the key itself (``name`` already validated)."""
    if any(stored.info.name == name for stored in keys):
        raise KeyStoreError(f"a key named {name!r} already exists")
    key = generate_key()
    info = KeyInfo(
        id="key_" + secrets.token_hex(6), name=name, created_at=now, limits=NO_LIMITS if limits.empty else limits
    )
    keys.append(StoredKey(info=info, digest=hash_key(key)))
    return key


def set_limits(keys: list[StoredKey], name_or_id: str, limits: KeyLimits) -> KeyInfo:
    """Replace, in ``keys``, the limits of the key with this id or name; its new info."""
    for index, stored in enumerate(keys):
        if name_or_id in (stored.info.id, stored.info.name):
            info = dataclasses.replace(stored.info, limits=NO_LIMITS if limits.empty else limits)
            keys[index] = StoredKey(info=info, digest=stored.digest)
            return info
    raise KeyStoreError(f"no key named or with id {name_or_id!r}")


def remove_key(keys: list[StoredKey], name_or_id: str) -> bool:
    """Remove, from ``keys``, the key with this id or name; False when there is none."""
    kept = [stored for stored in keys if name_or_id not in (stored.info.id, stored.info.name)]
    removed = len(kept) != len(keys)
    keys[:] = kept
    return removed


class KeyStore:
    """The keys file, cached in memory and re-read when it changes."""

    def __init__(self, path: Path, *, check_interval: float = RELOAD_CHECK_INTERVAL) -> None:
        self.path = path
        self.check_interval = check_interval
        self._keys: tuple[StoredKey, ...] = ()
        self._broken = False
        self._identity: _FileIdentity | None = None
        self._next_check = 0.0
        self._reload_lock = threading.Lock()

    # ---- reading (server hot path) ----------------------------------------------------------

    def has_keys(self) -> bool:
        """True when at least one key exists (or the file is unreadable: fail closed)."""
        self._refresh()
        return self._broken or bool(self._keys)

    def verify(self, presented: str) -> KeyInfo | None:
        """The key's info if ``presented`` is a current key, else None.

        The presented key's hash is compared with every stored hash with ``hmac.compare_digest``,
        without stopping at a match, so the time taken does not depend on which key matched.
        """
        self._refresh()
        return find_key(self._keys, presented)

    def list(self) -> _InfoList:
        self._refresh(force=True)
        if self._broken:
            raise KeyStoreError(f"{self.path} is not a valid keys file")
        return [stored.info for stored in self._keys]

    def _refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next_check:
            return
        with self._reload_lock:
            self._next_check = now + self.check_interval
            identity = self._stat()
            if identity == self._identity and not force:
                return
            self._load(identity)

    def _stat(self) -> _FileIdentity | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _load(self, identity: _FileIdentity | None) -> None:
        if identity is None:
            keys, broken = [], False
        else:
            try:
                keys, broken = parse_keys(self.path.read_bytes()), False
            except (OSError, ValueError, KeyError, TypeError) as exc:
                if not self._broken:
                    logger.error(
                        "keys file %s is unreadable (%s); rejecting every request", self.path, type(exc).__name__
                    )
                keys, broken = [], True
        if identity != self._identity:
            logger.info("keys file %s loaded: %d key(s)", self.path, len(keys))
        self._keys = tuple(keys)
        self._broken = broken
        self._identity = identity

    # ---- writing (CLI) ----------------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_KeyList]:
        """Read-modify-write under an exclusive lock on a sibling lock file."""
        ensure_private_dir(self.path.parent)
        lock_path = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                raw = self.path.read_bytes()
            except FileNotFoundError:
                keys: _KeyList = []
            else:
                try:
                    keys = parse_keys(raw)
                except (ValueError, KeyError, TypeError) as exc:
                    raise KeyStoreError(f"{self.path} is not a valid keys file; fix or remove it") from exc
            yield keys
        finally:
            os.close(fd)  # closing releases the lock

    def get(self, name_or_id: str) -> KeyInfo | None:
        """The current info of the key with this id or name (re-read when the file changed)."""
        self._refresh()
        return lookup(self._keys, name_or_id)

    def create(self, name: str, limits: KeyLimits = NO_LIMITS) -> str:
        """Add a key named ``name`` and return it: the only time the key itself is available."""
        name = validate_name(name)
        with self._locked() as keys:
            key = add_key(keys, name, limits, time.time())
            atomic_write_bytes(self.path, serialize_keys(keys))
        self._refresh(force=True)
        return key

    def update(self, name_or_id: str, limits: KeyLimits) -> KeyInfo:
        """Replace the limits of the key with this id or name; returns its new info."""
        with self._locked() as keys:
            info = set_limits(keys, name_or_id, limits)
            atomic_write_bytes(self.path, serialize_keys(keys))
        self._refresh(force=True)
        return info

    def revoke(self, name_or_id: str) -> bool:
        """Remove the key with this id or name; False when there is none."""
        with self._locked() as keys:
            if not remove_key(keys, name_or_id):
                return False
            atomic_write_bytes(self.path, serialize_keys(keys))
        self._refresh(force=True)
        return True
