"""codexgate's own thinking ``signature``: the reasoning item, carried and authenticated (pure).

Anthropic clients send each ``thinking`` block back with its ``signature`` on the next turn. The
signature codexgate emits carries what the backend needs to continue that reasoning: the reasoning
item's ``encrypted_content`` (and its id, kept for logs; ids are never sent upstream), plus the tag of
the account that produced it (encrypted reasoning is only readable by the account it came from).

Wire form: ``"cgs1_" + base64url(payload + mac)`` without padding, where ``payload`` is
``len(account) (1 byte) + account + len(item_id) (1 byte) + item_id + encrypted_content`` (UTF-8) and
``mac`` is HMAC-SHA256 over ``b"codexgate-thinking-v1\\0" + payload`` with the key passed in. Any value
that does not check out (another gateway's signature, Anthropic's own, a tampered or truncated one, a
different key) verifies as ``None``; :func:`verify` never raises.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

__all__ = ["SIGNATURE_PREFIX", "SignedReasoning", "sign", "verify"]

SIGNATURE_PREFIX = "cgs1_"
_CONTEXT = b"codexgate-thinking-v1\0"
_MAC_SIZE = 32
_MAX_FIELD = 255


@dataclass(frozen=True)
class SignedReasoning:
    """What a valid signature carries."""

    account: str
    encrypted_content: str
    item_id: str | None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _CONTEXT + payload, hashlib.sha256).digest()


def _short(value: str, what: str) -> bytes:
    raw = value.encode()
    if len(raw) > _MAX_FIELD:
        raise ValueError(f"{what} is longer than {_MAX_FIELD} bytes")
    return bytes([len(raw)]) + raw


def sign(encrypted_content: str, *, account: str, key: bytes, item_id: str | None = None) -> str:
    """The signature for one reasoning item; raises ``ValueError`` for an empty key or over-long tags."""
    if not key:
        raise ValueError("the signing key is empty")
    payload = _short(account, "account") + _short(item_id or "", "item_id") + encrypted_content.encode()
    token = base64.urlsafe_b64encode(payload + _mac(key, payload)).rstrip(b"=")
    return SIGNATURE_PREFIX + token.decode("ascii")


def verify(signature: object, *, key: bytes) -> SignedReasoning | None:
    """The reasoning a signature carries if it was made with ``key``; ``None`` for anything else."""
    if not key or not isinstance(signature, str) or not signature.startswith(SIGNATURE_PREFIX):
        return None
    body = signature[len(SIGNATURE_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) < _MAC_SIZE + 2:
        return None
    payload, mac = raw[:-_MAC_SIZE], raw[-_MAC_SIZE:]
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        account_len = payload[0]
        account_end = 1 + account_len
        item_len = payload[account_end]
        item_end = account_end + 1 + item_len
        if item_end > len(payload):
            return None
        account = payload[1:account_end].decode()
        item_id = payload[account_end + 1 : item_end].decode()
        content = payload[item_end:].decode()
    except (IndexError, UnicodeDecodeError):
        return None
    return SignedReasoning(account=account, encrypted_content=content, item_id=item_id or None)
