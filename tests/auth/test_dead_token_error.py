"""A refresh token that failed for good: each request gets a new error, not one that grows."""

from __future__ import annotations

import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from codexgate.auth.refresh import AuthError, TokenManager
from codexgate.config import CODEX_CLIENT_ID
from tests.fake_issuer import FakeIssuer, fake_issuer_thread
from tests.helpers import write_auth_json


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    with fake_issuer_thread() as fake:
        yield fake


def _depth(traceback: types.TracebackType | None) -> int:
    depth = 0
    while traceback is not None:
        depth, traceback = depth + 1, traceback.tb_next
    return depth


async def test_dead_token_error_is_new_each_time_and_its_traceback_does_not_grow(
    tmp_path: Path, issuer: FakeIssuer
) -> None:
    tokens = issuer.mint(expires_in=-60)
    issuer.used_refresh_tokens.add(tokens["refresh_token"])
    write_auth_json(tmp_path / "codex", refresh_token=tokens["refresh_token"], expires_in=-60)
    manager = TokenManager(
        own_file=tmp_path / "own" / "auth.json",
        codex_file=tmp_path / "codex" / "auth.json",
        issuer=issuer.base_url,
        client_id=CODEX_CLIENT_ID,
        refresh_margin=300,
    )
    errors: list[AuthError] = []
    for _ in range(6):
        with pytest.raises(AuthError) as info:
            await manager.get()
        errors.append(info.value)
    await manager.aclose()
    assert issuer.refresh_calls == 1  # still remembered: no second call with the dead token
    assert len({id(error) for error in errors}) == len(errors)
    assert {(e.status_code, e.code, e.message) for e in errors[1:]} == {
        (errors[0].status_code, errors[0].code, errors[0].message)
    }
    assert _depth(errors[-1].__traceback__) == _depth(errors[1].__traceback__)
