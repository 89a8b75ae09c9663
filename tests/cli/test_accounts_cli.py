"""``codexgate login`` into the pool, ``logout [NAME]`` and ``codexgate accounts …`` through the CLI.

The real console script runs in a subprocess for a login (its start-up takes seconds on a loaded machine);
the other commands go through the same typer app in-process, as tests/ops/test_keys_cli.py does.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from codexgate.cli.main import app
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import write_auth_json

CODEXGATE = str(Path(sys.executable).parent / "codexgate")


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


class Cli:
    """Runs commands against one home and remembers every output, to check that none shows a token."""

    def __init__(self, tmp_path: Path, **env: str) -> None:
        self.home = tmp_path / "home"
        self.codex = tmp_path / "codex"
        self.env = {"CODEXGATE_HOME": str(self.home), "CODEX_HOME": str(self.codex), "CODEXGATE_CONFIG": "", **env}
        self.outputs: list[str] = []

    def __call__(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, list(args), env=self.env)
        self.outputs += [result.stdout, result.stderr]
        return result.exit_code, result.stdout, result.stderr

    def script(self, *args: str) -> tuple[int, str, str]:
        done = subprocess.run(
            [CODEXGATE, *args], env={**os.environ, **self.env}, capture_output=True, text=True, timeout=120
        )
        self.outputs += [done.stdout, done.stderr]
        return done.returncode, done.stdout, done.stderr

    def listed(self) -> list[dict[str, Any]]:
        code, stdout, stderr = self("accounts", "list", "--json")
        assert code == 0, stderr
        views: list[dict[str, Any]] = json.loads(stdout)
        return views

    def assert_no_token(self, documents: Iterable[dict[str, Any]]) -> None:
        names = ("access_token", "refresh_token", "id_token")
        secrets = [document[name] for document in documents for name in names if document.get(name)]
        assert secrets
        text = "\n".join(self.outputs)
        for secret in secrets:
            assert secret not in text


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_login_adds_an_account_a_second_login_updates_it_and_logout_needs_a_name(
    tmp_path: Path, issuer: FakeIssuer
) -> None:
    cli = Cli(tmp_path, CODEXGATE_AUTH_ISSUER=issuer.base_url)
    code, stdout, stderr = cli.script("login", "--device")
    assert code == 0, stderr
    assert "added account 'dev'" in stdout and "ABCD-1234" in stderr
    assert mode(cli.home / "auth.json") == 0o600  # the first account lives where codexgate always kept it

    issuer.device_polls = 0
    code, stdout, _ = cli("login", "--device")
    assert code == 0 and "updated account 'dev'" in stdout
    assert [view["alias"] for view in cli.listed()] == ["dev"]

    issuer.account_id = "acct_second"  # another workspace under the same email
    issuer.device_polls = 0
    code, stdout, _ = cli("login", "--device")
    assert code == 0 and "added account 'dev-2'" in stdout
    second = cli.home / "accounts" / "dev-2.json"
    assert mode(second) == 0o600
    assert sorted(view["alias"] for view in cli.listed()) == ["dev", "dev-2"]

    code, _, stderr = cli("logout")
    assert code == 1 and "several accounts" in stderr and second.exists()
    code, stdout, _ = cli("logout", "dev-2")
    assert code == 0 and "dev-2" in stdout and not second.exists()
    code, stdout, _ = cli("logout")  # one left: no name needed
    assert code == 0 and not (cli.home / "auth.json").exists()
    assert cli.listed() == []
    cli.assert_no_token(issuer.issued)


def _saved_state(cli: Cli, key: str, **fields: Any) -> None:
    state = {"key": key, "chatgpt_account_id": key.split(":")[0], "user_id": key.split(":")[1], **fields}
    document = {"version": 1, "accounts": {key: {"state": state, "resumes_applied": 0}}}
    (cli.home / "accounts").mkdir(parents=True, exist_ok=True)
    (cli.home / "accounts" / "state.json").write_text(json.dumps(document))


def test_list_pause_resume_rename_import_remove(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    documents = [
        write_auth_json(cli.home, account_id="acct_a", email="a@example.com"),
        write_auth_json(cli.codex, account_id="acct_b", email="b@example.com"),
    ]
    now = time.time()
    today = dt.datetime.fromtimestamp(now, dt.UTC).strftime("%Y-%m-%d")
    # what a running server saved: a is cooling, with a window, today's counters and its last error
    _saved_state(
        cli,
        "acct_a:user_1",
        alias="a",
        state="cooling",
        cooling_until=now + 3600,
        primary={"used_percent": 42.0, "reset_at": now + 600, "window_minutes": 300},
        usage_day=today,
        requests_today=7,
        tokens_today=1234,
        last_error="usage limit reached",
    )
    views = {view["alias"]: view for view in cli.listed()}
    assert set(views) == {"a", "b"}
    a, b = views["a"], views["b"]
    assert a["state"] == "cooling" and a["state_text"].startswith("cooling until ")
    assert (a["requests_today"], a["tokens_today"], a["last_error"]) == (7, 1234, "usage limit reached")
    assert a["primary"]["used_percent"] == 42.0 and a["source"] == "own" and a["plan"] == "plus"
    assert (b["state"], b["source"], b["email"], b["requests_today"]) == ("active", "codex", "b@example.com", 0)

    code, stdout, _ = cli("accounts", "list")
    assert code == 0
    for text in ("a@example.com", "b@example.com", "cooling until", "42%", "1234", "usage limit reached"):
        assert text in stdout

    assert cli("accounts", "pause", "b")[0] == 0
    assert {v["alias"]: v["state"] for v in cli.listed()}["b"] == "paused"
    assert cli("accounts", "resume", "b@example.com")[0] == 0  # an email names an account when unique
    assert {v["alias"]: v["state"] for v in cli.listed()}["b"] == "active"

    assert cli("accounts", "rename", "a", "alpha")[0] == 0
    code, _, stderr = cli("accounts", "rename", "b", "alpha")
    assert code == 1 and "taken" in stderr
    code, _, stderr = cli("accounts", "rename", "b", "not an alias!")
    assert code == 1 and "alias" in stderr
    assert sorted(v["alias"] for v in cli.listed()) == ["alpha", "b"]

    elsewhere = tmp_path / "other-machine"
    documents.append(write_auth_json(elsewhere, account_id="acct_c", email="c@example.com"))
    code, _, stderr = cli("accounts", "import", str(elsewhere / "auth.json"))
    assert code == 0 and "Added account 'c'" in stderr and "single-use" in stderr
    assert mode(cli.home / "accounts" / "c.json") == 0o600 and (elsewhere / "auth.json").exists()
    code, _, stderr = cli("accounts", "import", str(elsewhere / "auth.json"))
    assert code == 0 and "Updated account 'c'" in stderr
    assert sorted(v["alias"] for v in cli.listed()) == ["alpha", "b", "c"]
    code, _, stderr = cli("accounts", "import", str(cli.codex / "auth.json"))
    assert code == 1 and "already an account" in stderr  # a second copy would spend the same refresh token

    assert cli("accounts", "remove", "alpha")[0] == 0
    assert not (cli.home / "auth.json").exists()
    code, _, stderr = cli("accounts", "remove", "b")
    assert code == 1 and "Codex CLI" in stderr and (cli.codex / "auth.json").exists()
    code, _, stderr = cli("accounts", "remove", "nobody")
    assert code == 1 and "no account named" in stderr
    assert sorted(v["alias"] for v in cli.listed()) == ["b", "c"]
    cli.assert_no_token(document["tokens"] for document in documents)


def test_the_table_shows_data_literally(tmp_path: Path) -> None:
    cli = Cli(tmp_path)
    write_auth_json(cli.home, email="[bold]eve\x1b[2J@example.com")
    code, stdout, _ = cli("accounts", "list")
    assert code == 0
    assert "[bold]eve\\x1b[2J@example.com" in stdout and "\x1b" not in stdout
    [view] = cli.listed()
    assert view["alias"] == "bold-eve-2j"  # an alias holds only safe characters
