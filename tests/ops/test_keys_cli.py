"""``codexgate keys`` through the CLI: create prints the key alone on the last stdout line, once."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from codexgate.cli.main import app
from codexgate.storage.api_keys import KeyStore

KEY_LINE = re.compile(r"^cg-[A-Za-z0-9_-]{43}$")


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def invoke(home: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"CODEXGATE_HOME": str(home), "CODEXGATE_CONFIG": ""})
    return result.exit_code, result.stdout, result.stderr


def test_key_lifecycle_through_the_cli(home: Path) -> None:
    code, stdout, _ = invoke(home, "keys", "create", "--name", "laptop")
    assert code == 0
    key = stdout.strip().splitlines()[-1]
    assert KEY_LINE.match(key), stdout
    assert stdout.count(key) == 1
    assert stat.S_IMODE((home / "keys.json").stat().st_mode) == 0o600
    assert KeyStore(home / "keys.json").verify(key) is not None

    code, stdout, stderr = invoke(home, "keys", "list")
    assert code == 0 and "laptop" in stdout
    stored_hash = orjson.loads((home / "keys.json").read_bytes())["keys"][0]["sha256"]
    for text in (stdout, stderr):
        assert key not in text and stored_hash not in text and stored_hash[:16] not in text

    code, stdout, _ = invoke(home, "keys", "list", "--json")
    [entry] = orjson.loads(stdout)
    assert entry["name"] == "laptop" and entry["id"].startswith("key_") and set(entry) == {"id", "name", "created_at"}

    code, stdout, stderr = invoke(home, "keys", "revoke", entry["id"])
    assert code == 0 and "No API keys are left" in stderr
    assert KeyStore(home / "keys.json").verify(key) is None
    code, _, stderr = invoke(home, "keys", "revoke", "laptop")
    assert code == 1 and "no key" in stderr


def test_create_by_name_twice_fails_and_revoke_by_name_works(home: Path) -> None:
    assert invoke(home, "keys", "create", "--name", "ci")[0] == 0
    code, stdout, stderr = invoke(home, "keys", "create", "--name", "ci")
    assert code == 1 and "already exists" in stderr and stdout == ""
    assert invoke(home, "keys", "create", "--name", "other")[0] == 0
    code, _, stderr = invoke(home, "keys", "revoke", "ci")
    assert code == 0 and "No API keys are left" not in stderr
    _, stdout, _ = invoke(home, "keys", "list", "--json")
    assert [entry["name"] for entry in orjson.loads(stdout)] == ["other"]


def test_list_with_no_keys(home: Path) -> None:
    code, stdout, stderr = invoke(home, "keys", "list")
    assert code == 0 and stdout == "" and "No API keys" in stderr
    code, stdout, _ = invoke(home, "keys", "list", "--json")
    assert code == 0 and orjson.loads(stdout) == []


def test_create_needs_a_name(home: Path) -> None:
    code, _, _ = invoke(home, "keys", "create")
    assert code == 2
    code, _, stderr = invoke(home, "keys", "create", "--name", "  ")
    assert code == 1 and "non-empty" in stderr
