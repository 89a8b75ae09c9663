"""Admin access to the console: the password hash, sessions, CSRF tokens and the login throttle.

The admin password is kept only as a scrypt hash (``scrypt$n$r$p$salt$hash``, base64 parts), in
``$CODEXGATE_HOME/admin.json`` (0600, written by ``codexgate admin set-password``) or handed in by
the deployment as an already-hashed value or a plain password (hashed once, at start). Without any
of them the console answers 404 to everything.

Sessions live in memory (a restart logs the admin out): a random 256-bit token in an HttpOnly,
SameSite=Strict cookie maps to its CSRF token and an expiry (idle timeout, capped by a maximum age).
Every state-changing request must carry the session's CSRF token (form field ``csrf_token`` or
header ``X-CSRF-Token``).

Login attempts are counted per client address: after :data:`FREE_ATTEMPTS` wrong passwords further
attempts are refused for 30 s, doubling with each further failure up to 15 minutes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import orjson

from codexgate.files import atomic_write_bytes

__all__ = [
    "FREE_ATTEMPTS",
    "AdminPassword",
    "LoginThrottle",
    "Session",
    "SessionStore",
    "hash_password",
    "read_admin_file",
    "verify_password",
    "write_admin_file",
]

logger = logging.getLogger("codexgate.console")

SCRYPT_N: Final = 2**14
SCRYPT_R: Final = 8
SCRYPT_P: Final = 1
MIN_PASSWORD_LENGTH: Final = 8
FREE_ATTEMPTS: Final = 5
FIRST_LOCKOUT_SECONDS: Final = 30.0
MAX_LOCKOUT_SECONDS: Final = 900.0
THROTTLE_FORGET_SECONDS: Final = 3600.0
MAX_TRACKED_ADDRESSES: Final = 10_000
MAX_SESSIONS: Final = 1_000


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """A slow salted hash of ``password`` (scrypt), as one string."""
    salt = salt if salt is not None else os.urandom(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches a :func:`hash_password` string (False for a malformed one)."""
    try:
        scheme, n, r, p, salt_b64, digest_b64 = encoded.split("$")
        if scheme != "scrypt":
            return False
        salt, expected = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
        digest = hashlib.scrypt(
            password.encode("utf-8"), salt=salt, n=int(n), r=int(r), p=int(p), dklen=len(expected), maxmem=2**26
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(digest, expected)


def write_admin_file(path: Path, encoded: str) -> None:
    """Store the admin password hash (0600, atomically)."""
    atomic_write_bytes(path, orjson.dumps({"version": 1, "password_hash": encoded}, option=orjson.OPT_INDENT_2))


def read_admin_file(path: Path) -> str | None:
    """The stored hash, or None when the file is missing or unusable (the console then stays off)."""
    try:
        document = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        logger.error("admin file %s is unreadable; the console stays disabled", path)
        return None
    value = document.get("password_hash") if isinstance(document, dict) else None
    return value if isinstance(value, str) and value.startswith("scrypt$") else None


class AdminPassword:
    """Where the admin password hash comes from: a plain password or a hash given at start, else the file.

    The file is re-read when it changes (checked at most once a second), so ``admin set-password`` on
    a running server takes effect without a restart.
    """

    def __init__(self, path: Path, *, password: str | None = None, password_hash: str | None = None) -> None:
        self.path = path
        self._fixed = hash_password(password) if password else (password_hash or None)
        self._file_hash: str | None = None
        self._identity: tuple[int, int, int] | None = None
        self._next_check = float("-inf")
        self._lock = threading.Lock()

    def current(self, now: float) -> str | None:
        """The hash to check against, or None when no password is set."""
        if self._fixed is not None:
            return self._fixed
        if now >= self._next_check:
            with self._lock:
                self._next_check = now + 1.0
                try:
                    st = os.stat(self.path)
                    identity: tuple[int, int, int] | None = (st.st_ino, st.st_size, st.st_mtime_ns)
                except FileNotFoundError:
                    identity = None
                if identity != self._identity:
                    self._identity = identity
                    self._file_hash = None if identity is None else read_admin_file(self.path)
        return self._file_hash


@dataclass(slots=True)
class Session:
    token: str
    csrf_token: str
    created_at: float
    expires_at: float

    def csrf_matches(self, presented: str | None) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_token.encode(), (presented or "").encode())


class SessionStore:
    """Admin sessions in memory, each expiring after ``idle_seconds`` without use or ``max_age`` in all."""

    def __init__(self, *, idle_seconds: float = 3600.0, max_age: float = 12 * 3600.0) -> None:
        self.idle_seconds = idle_seconds
        self.max_age = max_age
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, now: float) -> Session:
        session = Session(
            token=secrets.token_urlsafe(32),
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + self.idle_seconds,
        )
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                self._sessions = {t: s for t, s in self._sessions.items() if s.expires_at > now}
                while len(self._sessions) >= MAX_SESSIONS:
                    del self._sessions[next(iter(self._sessions))]
            self._sessions[session.token] = session
        return session

    def get(self, token: str | None, now: float) -> Session | None:
        """The live session for ``token`` (its idle expiry pushed back), else None."""
        if not token:
            return None
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[token]
                return None
            session.expires_at = min(now + self.idle_seconds, session.created_at + self.max_age)
            return session

    def drop(self, token: str | None) -> None:
        if token:
            with self._lock:
                self._sessions.pop(token, None)

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


@dataclass(slots=True)
class _Attempts:
    failures: int = 0
    locked_until: float = 0.0
    last_failure: float = 0.0


class LoginThrottle:
    """Counts wrong passwords per client address and refuses attempts for a growing time after a few."""

    def __init__(self, *, free_attempts: int = FREE_ATTEMPTS, first_lockout: float = FIRST_LOCKOUT_SECONDS) -> None:
        self.free_attempts = free_attempts
        self.first_lockout = first_lockout
        self._by_address: dict[str, _Attempts] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, address: str, now: float) -> float:
        """0 when ``address`` may try a password now, else how long it must wait."""
        with self._lock:
            attempts = self._by_address.get(address)
            if attempts is None:
                return 0.0
            return max(0.0, attempts.locked_until - now)

    def failed(self, address: str, now: float) -> float:
        """Count a wrong password; returns the lockout it starts (0 while attempts are still free)."""
        with self._lock:
            if len(self._by_address) >= MAX_TRACKED_ADDRESSES:
                cutoff = now - THROTTLE_FORGET_SECONDS
                self._by_address = {a: s for a, s in self._by_address.items() if s.last_failure > cutoff}
                if len(self._by_address) >= MAX_TRACKED_ADDRESSES:
                    del self._by_address[next(iter(self._by_address))]
            attempts = self._by_address.setdefault(address, _Attempts())
            if now - attempts.last_failure > THROTTLE_FORGET_SECONDS:
                attempts.failures = 0
            attempts.failures += 1
            attempts.last_failure = now
            extra = attempts.failures - self.free_attempts
            if extra < 0:
                return 0.0
            lockout = min(self.first_lockout * 2.0**extra, MAX_LOCKOUT_SECONDS)
            attempts.locked_until = now + lockout
            return lockout

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._by_address.pop(address, None)
