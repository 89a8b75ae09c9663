"""``rediss://``: the Redis state over TLS, trusting a private CA, and refusing a server it can't verify."""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from codexgate.state import RedisState, StateUnavailable
from tests.services import RedisServer


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis", tls=self_signed(tmp_path)).start()
    try:
        yield server
    finally:
        server.stop()


async def test_rediss_with_a_trusted_ca_works(tls_redis: RedisServer) -> None:
    assert tls_redis.url.startswith("rediss://") and tls_redis.tls is not None
    state = RedisState.from_url(tls_redis.url, ssl_ca_certs=str(tls_redis.tls[0]))
    try:
        await state.put("ns", "k", b"over tls", ttl=5)
        assert await state.get("ns", "k") == b"over tls"
    finally:
        await state.close()


async def test_rediss_refuses_a_server_it_cannot_verify(tls_redis: RedisServer) -> None:
    state = RedisState.from_url(tls_redis.url)  # the system's CAs do not know this certificate
    try:
        with pytest.raises(StateUnavailable):
            await state.get("ns", "k")
    finally:
        await state.close()
