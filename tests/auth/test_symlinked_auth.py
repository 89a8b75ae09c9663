"""A symlinked auth.json: a refresh writes through the link to its target; the link stays a link."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexgate.auth.credentials import write_tokens
from codexgate.auth.refresh import TokenManager
from codexgate.config import CODEX_CLIENT_ID
from codexgate.files import atomic_write_bytes, write_target
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import write_auth_json


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(*directories: Path) -> list[str]:
    return [p.name for d in directories for p in d.iterdir() if p.name.endswith(".tmp")]


async def test_refresh_through_a_symlink_updates_the_target_and_keeps_the_link(
    tmp_path: Path, issuer: FakeIssuer
) -> None:
    dotfiles = tmp_path / "dotfiles" / "codex"
    first = issuer.mint(expires_in=-60)  # expired: the first request refreshes
    write_auth_json(dotfiles, refresh_token=first["refresh_token"], expires_in=-60)
    target = dotfiles / "auth.json"
    link = tmp_path / "codex" / "auth.json"
    link.parent.mkdir()
    link.symlink_to(target)
    manager = TokenManager(
        own_file=tmp_path / "own" / "auth.json",
        codex_file=link,
        issuer=issuer.base_url,
        client_id=CODEX_CLIENT_ID,
        refresh_margin=300,
    )
    credentials = await manager.get()
    await manager.aclose()
    assert issuer.refresh_calls == 1
    assert link.is_symlink() and link.resolve() == target.resolve()
    stored = json.loads(target.read_text())
    assert stored["tokens"]["refresh_token"] == issuer.issued[-1]["refresh_token"] != first["refresh_token"]
    assert stored["tokens"]["access_token"] == credentials.access_token
    assert _mode(target) == 0o600
    assert _leftovers(dotfiles, link.parent) == []


def test_relative_and_chained_links_write_to_the_final_target(tmp_path: Path) -> None:
    real = tmp_path / "real"
    write_auth_json(real)
    (tmp_path / "middle").mkdir()
    middle = tmp_path / "middle" / "auth.json"
    middle.symlink_to(Path("..") / "real" / "auth.json")  # relative
    (tmp_path / "home").mkdir()
    link = tmp_path / "home" / "auth.json"
    link.symlink_to(middle)
    assert write_target(link) == (real / "auth.json").resolve()
    write_tokens(link, access_token="at_new", refresh_token="rt_rotated_1", id_token=None)
    assert link.is_symlink() and middle.is_symlink()
    document = json.loads((real / "auth.json").read_text())
    assert document["tokens"]["refresh_token"] == "rt_rotated_1" and document["tokens"]["access_token"] == "at_new"
    assert document["tokens"]["account_id"] == "acct_test_123"  # the file's other fields are kept
    assert _mode(real / "auth.json") == 0o600
    assert _leftovers(real, tmp_path / "middle", tmp_path / "home") == []


def test_a_dangling_link_gets_its_target_created(tmp_path: Path) -> None:
    link = tmp_path / "auth.json"
    target = tmp_path / "elsewhere" / "auth.json"
    link.symlink_to(target)
    write_tokens(link, access_token="at_1", refresh_token="rt_rotated_2", id_token=None)
    assert link.is_symlink() and json.loads(target.read_text())["tokens"]["refresh_token"] == "rt_rotated_2"
    assert _mode(target) == 0o600


def test_a_link_loop_is_an_error_not_a_replaced_link(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.symlink_to(second)
    second.symlink_to(first)
    with pytest.raises(OSError):
        write_tokens(first, access_token="at_1", refresh_token="rt_rotated_3", id_token=None)
    assert first.is_symlink() and second.is_symlink()
    assert os.readlink(first) == str(second)


def test_plain_files_and_writers_that_do_not_follow_are_unchanged(tmp_path: Path) -> None:
    plain = tmp_path / "plain.json"
    atomic_write_bytes(plain, b"{}", follow_symlinks=True)
    assert write_target(plain) == plain and plain.read_bytes() == b"{}" and _mode(plain) == 0o600
    link = tmp_path / "link.json"
    link.symlink_to(plain)
    atomic_write_bytes(link, b"[]")  # the default: the entry itself is replaced
    assert not link.is_symlink() and plain.read_bytes() == b"{}"
