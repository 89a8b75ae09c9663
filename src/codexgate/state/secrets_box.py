"""Credentials in the shared store, encrypted: an AEAD box keyed by ``secret_key``, and the store on top.

**The box.** :class:`SecretBox` seals bytes with AES-256-GCM (``cryptography``) under a key derived from
the ``secret_key`` setting with scrypt (so a guessable setting is at least slow to guess; still, use a
random string: ``python -c "import secrets; print(secrets.token_urlsafe(32))"``). An empty key is refused.
A sealed value reads ``cg1.<key id>.<base64url(nonce ‖ ciphertext ‖ tag)>``: a format version, the id of
the key that sealed it (derived from the key, never revealing it), a fresh 96-bit random nonce per seal.
The account name is bound in as associated data, so a sealed document copied under another account's key
fails to open.

**Rotation.** Start every instance with the new key as ``secret_key`` and the old one among the previous
keys (``SecretBox(new, previous_keys=[old])``): values sealed under any configured key open, every new
write seals under the new key. Then re-seal what is stored with :meth:`CredentialStore.rewrap_all` (or let
each account's next refresh do it); once it reports nothing left under old keys, drop the old key from the
configuration. A value sealed under a key no longer configured fails with :class:`SecretBoxError`, it is
never guessed at.

**The store.** :class:`CredentialStore` keeps one sealed ``auth.json``-shaped document per account in a
:class:`SharedState` map. A write carries the document's ``last_refresh`` as its version and the store only
accepts it when what is stored is not newer (one atomic compare-and-write: a Lua script on Redis), so a slow
instance finishing an old refresh can never put back tokens that were already replaced. Nothing but sealed
bytes and the numeric version reach the store: no token is ever stored in plaintext.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from codexgate.state.interface import SharedState

__all__ = ["CredentialStore", "SecretBox", "SecretBoxError", "version_of"]

FORMAT: Final = "cg1"
_KEY_SALT: Final = b"codexgate secret_key -> credential key v1"
_ID_SALT: Final = b"codexgate secret_key -> key id v1"


class SecretBoxError(Exception):
    """A sealed value could not be opened (unknown key id, tampered, wrong account, malformed)."""


def _derive(secret_key: str, salt: bytes) -> bytes:
    return Scrypt(salt=salt, length=32, n=2**14, r=8, p=1).derive(secret_key.encode("utf-8"))


class SecretBox:
    """AES-256-GCM under keys derived from ``secret_key`` (current) and ``previous_keys`` (open only)."""

    def __init__(self, secret_key: str, previous_keys: Sequence[str] = ()) -> None:
        if not secret_key or not secret_key.strip():
            raise ValueError("secret_key is empty: set a long random secret_key to share credentials")
        self._ciphers: dict[str, AESGCM] = {}
        self.key_id = self._add(secret_key)
        for previous in previous_keys:
            if previous and previous.strip():
                self._add(previous)

    @property
    def rotating(self) -> bool:
        """Whether previous keys are configured (values sealed under them still open)."""
        return len(self._ciphers) > 1

    def _add(self, secret_key: str) -> str:
        key_id = _derive(secret_key, _ID_SALT)[:6].hex()
        self._ciphers.setdefault(key_id, AESGCM(_derive(secret_key, _KEY_SALT)))
        return key_id

    def seal(self, plaintext: bytes, context: str) -> bytes:
        """Encrypt under the current key; ``context`` (e.g. the account) must match when opening."""
        nonce = os.urandom(12)
        sealed = self._ciphers[self.key_id].encrypt(nonce, plaintext, self._aad(self.key_id, context))
        return f"{FORMAT}.{self.key_id}.".encode() + base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=")

    def open(self, sealed: bytes, context: str) -> bytes:
        """Decrypt a value sealed under any configured key, for the same ``context``."""
        key_id, body = self._split(sealed)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise SecretBoxError(f"sealed under key id {key_id}, which is not configured (was secret_key rotated?)")
        try:
            raw = base64.urlsafe_b64decode(body + b"=" * (-len(body) % 4))
            return cipher.decrypt(raw[:12], raw[12:], self._aad(key_id, context))
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretBoxError("sealed value failed authentication (tampered, or another account's)") from None

    def key_id_of(self, sealed: bytes) -> str:
        """The id of the key ``sealed`` was sealed under."""
        return self._split(sealed)[0]

    @staticmethod
    def _split(sealed: bytes) -> tuple[str, bytes]:
        parts = bytes(sealed).split(b".", 2)
        if len(parts) != 3 or parts[0].decode("ascii", "replace") != FORMAT:
            raise SecretBoxError("not a sealed value of a known format")
        return parts[1].decode("ascii", "replace"), parts[2]

    @staticmethod
    def _aad(key_id: str, context: str) -> bytes:
        return f"{FORMAT}|{key_id}|{context}".encode()


def version_of(document: Mapping[str, Any]) -> int:
    """A credentials document's ``last_refresh`` as microseconds since the epoch (0 when absent/invalid)."""
    raw = document.get("last_refresh")
    if not isinstance(raw, str) or not raw:
        return 0
    try:
        moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return 0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return round(moment.timestamp() * 1_000_000)


class CredentialStore:
    """Sealed credentials per account in a shared state map (see the module docstring)."""

    def __init__(self, state: SharedState, box: SecretBox, *, namespace: str = "credentials") -> None:
        self.state = state
        self.box = box
        self.namespace = namespace

    @staticmethod
    def _context(account: str) -> str:
        return f"credentials:{account}"

    async def store_credentials(self, account: str, document: Mapping[str, Any]) -> bool:
        """Seal and store ``document``; False (nothing written) when the stored one is newer."""
        sealed = self.box.seal(orjson.dumps(dict(document)), self._context(account))
        return await self.state.put_if_newer(self.namespace, account, sealed, version_of(document))

    async def load_credentials(self, account: str) -> dict[str, Any] | None:
        """The account's document, or None when none is stored; :class:`SecretBoxError` when unreadable."""
        sealed = await self.state.get(self.namespace, account)
        if sealed is None:
            return None
        document = orjson.loads(self.box.open(sealed, self._context(account)))
        if not isinstance(document, dict):
            raise SecretBoxError("stored credentials are not a JSON object")
        return document

    async def accounts(self) -> list[str]:
        """Every account with stored credentials."""
        return sorted(await self.state.scan(self.namespace))

    async def rewrap_all(self) -> int:
        """Re-seal every document not sealed under the current key; the number re-sealed.

        Each rewrite is conditional on the document's version, so a refresh landing meanwhile is kept.
        """
        rewrapped = 0
        for account, sealed in (await self.state.scan(self.namespace)).items():
            if self.box.key_id_of(sealed) == self.box.key_id:
                continue
            document = orjson.loads(self.box.open(sealed, self._context(account)))
            resealed = self.box.seal(orjson.dumps(document), self._context(account))
            if await self.state.put_if_newer(self.namespace, account, resealed, version_of(document)):
                rewrapped += 1
        return rewrapped
