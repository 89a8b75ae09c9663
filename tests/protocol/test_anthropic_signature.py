"""codexgate's thinking signatures: round trip, tampering, wrong key, foreign strings."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codexgate.protocol.anthropic_signature import SIGNATURE_PREFIX, SignedReasoning, sign, verify

KEY = bytes(range(32))


def test_round_trip() -> None:
    signature = sign("gAAAAB-encrypted==", account="acct-42", key=KEY, item_id="rs_abc")
    assert signature.startswith(SIGNATURE_PREFIX)
    assert "=" not in signature and "+" not in signature and "/" not in signature
    assert verify(signature, key=KEY) == SignedReasoning("acct-42", "gAAAAB-encrypted==", "rs_abc")


def test_without_item_id_and_with_unicode() -> None:
    signed = verify(sign("contenu-é", account="compte-ü", key=KEY), key=KEY)
    assert signed == SignedReasoning("compte-ü", "contenu-é", None)


def test_compact() -> None:
    content = "x" * 3000
    signature = sign(content, account="a", key=KEY)
    assert len(signature) < len(content) * 4 / 3 + 80


def test_wrong_key() -> None:
    signature = sign("content", account="a", key=KEY)
    assert verify(signature, key=b"another key of 32 bytes........") is None
    assert verify(signature, key=b"") is None


def test_every_single_byte_tamper_is_refused() -> None:
    signature = sign("abc", account="acct", key=KEY, item_id="rs")
    body = signature[len(SIGNATURE_PREFIX) :]
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    for position in range(len(raw)):
        tampered = bytearray(raw)
        tampered[position] ^= 0x01
        forged = SIGNATURE_PREFIX + base64.urlsafe_b64encode(bytes(tampered)).rstrip(b"=").decode()
        assert verify(forged, key=KEY) is None, position


def test_swapping_the_account_is_refused() -> None:
    signature = sign("abc", account="acct-1", key=KEY)
    other = sign("abc", account="acct-2", key=KEY)
    assert verify(signature, key=KEY) != verify(other, key=KEY)
    spliced = signature[:20] + other[20:]
    assert verify(spliced, key=KEY) is None


@pytest.mark.parametrize(
    "value",
    [
        "",
        "EqQBCkYIBxgCKkBFakeAnthropicSignatureBytes==",
        SIGNATURE_PREFIX,
        SIGNATURE_PREFIX + "!!!not base64!!!",
        SIGNATURE_PREFIX + "AAAA",
        SIGNATURE_PREFIX + "A",
        None,
        12345,
        {"signature": "x"},
    ],
)
def test_foreign_values_verify_as_none(value: object) -> None:
    assert verify(value, key=KEY) is None


@given(st.text(max_size=40))
def test_arbitrary_strings_never_raise(value: str) -> None:
    assert verify(value, key=KEY) is None
    assert verify(SIGNATURE_PREFIX + value, key=KEY) is None


def test_sign_refuses_an_empty_key_and_long_tags() -> None:
    with pytest.raises(ValueError):
        sign("c", account="a", key=b"")
    with pytest.raises(ValueError):
        sign("c", account="a" * 300, key=KEY)
