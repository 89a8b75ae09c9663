"""The model catalog's refresh rules, the Codex client identity (headers, installation id), the headers
carried over from Codex clients, and a WebSocket's memory of its last turn."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from codexgate.errors import APIError
from codexgate.server.ws_turns import SocketMemory, TurnRecord, warmup_events
from codexgate.upstream.client import newer_client_error
from codexgate.upstream.headers import carried_client_headers, installation_id, upstream_headers
from codexgate.upstream.models import ModelCatalog, refresh_and_report, watch_refresh_requests

ENTRIES: list[Mapping[str, Any]] = [{"slug": "gpt-5.6-sol", "use_responses_lite": True}]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rules_follow_the_ttl_and_fall_back_without_a_catalog() -> None:
    calls: list[str] = []
    answers: list[Any] = [APIError(502, "down"), ENTRIES, ENTRIES]

    async def fetch() -> list[Mapping[str, Any]]:
        calls.append("fetch")
        answer = answers.pop(0)
        if isinstance(answer, APIError):
            raise answer
        return list(answer)

    clock = Clock()
    catalog = ModelCatalog(fetch, ttl=300, fallback=[], clock=clock)
    assert not (await catalog.current_rules()).from_catalog  # the fallback table
    assert not (await catalog.current_rules()).from_catalog and len(calls) == 1  # no retry during the backoff
    clock.now += 31
    rules = await catalog.current_rules()
    assert rules.from_catalog and rules.entry("gpt-5.6-sol") is not None and len(calls) == 2
    clock.now += 100
    await catalog.current_rules()
    assert len(calls) == 2  # within the TTL
    catalog.invalidate()  # a backend answer named an unknown model
    await catalog.current_rules()
    assert len(calls) == 3


async def test_a_failed_refresh_keeps_the_last_catalog_and_says_why(tmp_path: Path) -> None:
    answers: list[Any] = [ENTRIES, APIError(502, "backend down")]

    async def fetch() -> list[Mapping[str, Any]]:
        answer = answers.pop(0)
        if isinstance(answer, APIError):
            raise answer
        return list(answer)

    catalog = ModelCatalog(fetch, ttl=300, fallback=[])
    assert (await catalog.refresh()).from_catalog
    report = await refresh_and_report(catalog, tmp_path / "done", "n1")
    assert report["ok"] is False and "backend down" in report["error"] and report["nonce"] == "n1"
    assert catalog.available  # the last good catalog stays


async def test_the_watcher_answers_each_new_nonce(tmp_path: Path) -> None:
    fetched = 0

    async def fetch() -> list[Mapping[str, Any]]:
        nonlocal fetched
        fetched += 1
        return list(ENTRIES)

    (tmp_path / "models.refresh").write_text('{"nonce": "old"}')  # left from before: not answered
    catalog = ModelCatalog(fetch, ttl=300, fallback=[])
    task = asyncio.ensure_future(watch_refresh_requests(catalog, tmp_path, interval=0.02))
    try:
        await asyncio.sleep(0.1)
        assert fetched == 0
        (tmp_path / "models.refresh").write_text('{"nonce": "new"}')
        for _ in range(200):
            if (tmp_path / "models.refresh.done").exists():
                break
            await asyncio.sleep(0.01)
        assert '"nonce":"new"' in (tmp_path / "models.refresh.done").read_text() and fetched == 1
    finally:
        task.cancel()


def test_headers_are_the_codex_cli_s() -> None:
    headers = upstream_headers(
        access_token="tok",
        account_id="acct",
        session_id="s1",
        originator="codex_exec",
        client_version="0.169.0",
        request_id="r1",
        client_headers={"thread-id": "t9", "x-codex-beta-features": "remote_compaction_v2"},
    )
    assert headers["originator"] == "codex_exec" and headers["user-agent"].startswith("codex_exec/0.169.0 (")
    assert "openai-beta" not in headers and "version" not in headers and "session_id" not in headers
    assert headers["session-id"] == "s1" and headers["thread-id"] == "t9" and headers["x-client-request-id"] == "r1"
    assert headers["x-codex-beta-features"] == "remote_compaction_v2" and headers["chatgpt-account-id"] == "acct"


def test_installation_id_is_created_once_with_mode_0600(tmp_path: Path) -> None:
    first = installation_id(tmp_path / "home")
    assert installation_id(tmp_path / "home") == first
    path = tmp_path / "home" / "installation_id"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("not a uuid")
    assert installation_id(tmp_path / "home") != first  # a broken file is replaced


def test_carried_headers_are_checked() -> None:
    carried = carried_client_headers(
        {"session_id": "old-spelling", "x-openai-internal-codex-responses-lite": "TRUE", "other": "x"}
    )
    assert carried == {"session-id": "old-spelling", "x-openai-internal-codex-responses-lite": "true"}
    for bad in ("a" * 5000, "line\nbreak", "bell\x07"):
        with pytest.raises(APIError) as info:
            carried_client_headers({"x-codex-turn-metadata": bad})
        assert info.value.status_code == 400 and info.value.param == "x-codex-turn-metadata"


def test_the_newer_version_answer_becomes_a_400_naming_the_setting() -> None:
    mapped = newer_client_error(APIError(400, "This model requires a newer version of Codex."), "0.169.0")
    assert mapped.status_code == 400 and mapped.code == "client_version_too_old"
    assert "`client_version`" in mapped.message and "0.169.0" in mapped.message
    other = APIError(400, "Store must be set to false")
    assert newer_client_error(other, "0.169.0") is other


def test_socket_memory_expands_a_chained_turn_and_is_bounded() -> None:
    memory = SocketMemory(limit=10_000)
    user = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}
    call = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
    memory.remember("resp_1", [user], [call])
    output = {"type": "function_call_output", "call_id": "c1", "output": "ok"}
    expanded = memory.expand({"model": "m", "previous_response_id": "resp_1", "input": [output], "generate": True})
    assert expanded == {"model": "m", "input": [user, call, output]}
    with pytest.raises(APIError) as info:
        memory.expand({"previous_response_id": "resp_0", "input": []})
    assert info.value.code == "previous_response_not_found"
    memory.remember("resp_2", [user] * 1000, [])  # above the bound: not kept
    with pytest.raises(APIError):
        memory.expand({"previous_response_id": "resp_2", "input": []})


def test_turn_record_and_warmup() -> None:
    record = TurnRecord()
    for event in warmup_events("resp_w", "gpt-5", 1):
        record.feed(event)
    assert record.response_id == "resp_w" and record.usage is not None and not record.failed
    record.feed({"type": "error", "code": "server_is_overloaded", "message": "busy"})
    assert _failed(record) == "server_is_overloaded"


def _failed(record: TurnRecord) -> str | None:
    """The record's failure, read afresh (mypy keeps the narrowing of an earlier assert on the attribute)."""
    return record.failed
