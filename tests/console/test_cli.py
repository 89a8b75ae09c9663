"""``codexgate keys`` with budgets and ``codexgate admin set-password`` through the CLI."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import orjson
from typer.testing import CliRunner

from codexgate.cli.main import app
from codexgate.console.auth import read_admin_file, verify_password
from codexgate.storage.api_keys import KeyInfo, KeyStore
from codexgate.storage.budgets import BUDGETS_FILE_NAME, BudgetTracker


def invoke(home: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, list(args), input=stdin, env={"CODEXGATE_HOME": str(home), "CODEXGATE_CONFIG": "", "COLUMNS": "200"}
    )
    return result.exit_code, result.stdout, result.stderr


def fresh(store: KeyStore, name: str) -> KeyInfo | None:
    """The key as the file holds it now (``list`` re-reads; ``get`` may serve a 0.25 s old copy)."""
    return next((info for info in store.list() if info.name == name), None)


def test_keys_create_update_and_list_with_budgets(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, stdout, _ = invoke(
        home, "keys", "create", "--name", "team", "--tokens-per-day", "1000", "--model", "gpt-5*", "--model", "o4-mini",
        "--expires", "2027-01-01",
    )  # fmt: skip
    assert code == 0
    key = stdout.strip().splitlines()[-1]
    store = KeyStore(home / "keys.json")
    info = store.verify(key)
    assert info is not None
    assert (info.limits.tokens_per_day, info.limits.allowed_models) == (1000, ("gpt-5*", "o4-mini"))
    assert info.limits.expires_at == 1798761600.0

    code, _, stderr = invoke(home, "keys", "update", "team", "--rpm", "20", "--tokens-per-month", "90000")
    assert code == 0, stderr
    updated = fresh(store, "team")
    assert updated is not None
    assert (updated.limits.requests_per_minute, updated.limits.tokens_per_month) == (20, 90000)
    assert updated.limits.tokens_per_day == 1000  # untouched options keep their value

    # a running server's counters, as it saves them
    tracker = BudgetTracker(home / BUDGETS_FILE_NAME)
    tracker.open()
    tracker.record(updated, 640, time.time())
    tracker.close()
    code, stdout, _ = invoke(home, "keys", "list")
    assert code == 0 and "day 640/1,000" in stdout and "month 640/90,000" in stdout and "20 rpm" in stdout
    code, stdout, _ = invoke(home, "keys", "list", "--json")
    [entry] = orjson.loads(stdout)
    assert entry["tokens_used"]["day"] == 640 and entry["limits"]["requests_per_minute"] == 20

    code, _, _ = invoke(home, "keys", "update", "team", "--clear", "--tokens-per-week", "5")
    updated = fresh(store, "team")
    assert code == 0 and updated is not None
    assert updated.limits.to_dict() == {"tokens_per_week": 5}
    code, _, stderr = invoke(home, "keys", "update", "team", "--expires", "someday")
    assert code == 1 and "--expires" in stderr
    assert invoke(home, "keys", "update", "nobody", "--rpm", "1")[0] == 1


def test_admin_set_password_stores_a_private_slow_hash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, _, stderr = invoke(home, "admin", "set-password", "--password-stdin", stdin="short\n")
    assert code == 1 and "at least" in stderr
    code, _, _ = invoke(home, "admin", "set-password", stdin="a long password\na long password\n")
    assert code == 0
    path = home / "admin.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "a long password" not in path.read_text()
    encoded = read_admin_file(path)
    assert encoded is not None and encoded.startswith("scrypt$")
    assert verify_password("a long password", encoded) and not verify_password("a long passwore", encoded)
    assert invoke(home, "admin", "clear-password")[0] == 0 and not path.exists()
