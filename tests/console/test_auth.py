"""Admin password hashing, session expiry and the login throttle (no HTTP)."""

from __future__ import annotations

from pathlib import Path

from codexgate.config import load_settings
from codexgate.console import ConsoleConfig
from codexgate.console.auth import AdminPassword, LoginThrottle, SessionStore, hash_password, verify_password


def test_password_hash_is_salted_and_verifies() -> None:
    first, second = hash_password("s3cret-pass"), hash_password("s3cret-pass")
    assert first != second and first.startswith("scrypt$16384$8$1$")
    assert verify_password("s3cret-pass", first) and verify_password("s3cret-pass", second)
    assert not verify_password("s3cret-pasS", first)
    assert not verify_password("s3cret-pass", "scrypt$broken")
    assert not verify_password("s3cret-pass", "md5$x$y$z$a$b")


def test_plain_password_is_hashed_at_start_and_wins_over_the_file(tmp_path: Path) -> None:
    source = AdminPassword(tmp_path / "admin.json", password="from-config")
    encoded = source.current(0.0)
    assert encoded is not None and "from-config" not in encoded and verify_password("from-config", encoded)
    assert AdminPassword(tmp_path / "admin.json").current(0.0) is None
    assert AdminPassword(tmp_path / "admin.json", password_hash=encoded).current(0.0) == encoded


def test_sessions_expire_when_idle_and_at_their_maximum_age() -> None:
    store = SessionStore(idle_seconds=100, max_age=250)
    session = store.create(now=0.0)
    assert store.get(session.token, 90.0) is session  # use pushes the idle expiry to 190
    assert store.get(session.token, 180.0) is session
    assert store.get(session.token, 240.0) is session  # capped at created + 250
    assert store.get(session.token, 251.0) is None
    other = store.create(now=0.0)
    assert store.get(other.token, 101.0) is None  # idle too long
    assert store.get("made-up", 0.0) is None and store.get(None, 0.0) is None
    assert session.csrf_matches(session.csrf_token) and not session.csrf_matches("") and not session.csrf_matches(None)


def test_throttle_locks_out_after_five_failures_and_the_lockout_grows() -> None:
    throttle = LoginThrottle()
    for i in range(4):
        assert throttle.failed("10.0.0.1", float(i)) == 0.0
        assert throttle.wait_seconds("10.0.0.1", float(i)) == 0.0
    assert throttle.failed("10.0.0.1", 4.0) == 30.0
    assert throttle.wait_seconds("10.0.0.1", 10.0) == 24.0
    assert throttle.wait_seconds("10.0.0.2", 10.0) == 0.0  # per address
    assert throttle.failed("10.0.0.1", 40.0) == 60.0
    throttle.succeeded("10.0.0.1")
    assert throttle.wait_seconds("10.0.0.1", 41.0) == 0.0


def test_console_config_from_settings(tmp_path: Path) -> None:
    settings = load_settings(flags={"home": str(tmp_path)}, env={}).settings
    config = ConsoleConfig.from_settings(settings)
    assert config.home == tmp_path and config.admin_file == tmp_path / "admin.json"
    assert config.admin_password is None and config.retention_days == settings.storage.usage_retention_days
