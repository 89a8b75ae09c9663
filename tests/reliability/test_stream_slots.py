"""A hostile upstream cannot leak stream slots: every unexpected failure gives the slot back.

The upstream here is a small aiohttp server of the test's own on loopback that answers with what
the real backend never sends: a header value that is not Latin-1, an event whose ``item_id`` is an
object (unhashable), an event whose fields have the wrong types. After each, the request gets an
answer in OpenAI's envelope (never uvicorn's plain-text 500), ``codexgate_active_streams`` is back
to 0, and the next request still gets a slot (``max_concurrent_streams`` is 1 here).
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from codexgate.server.app import create_app
from tests.helpers import serve_in_thread, settings_for, write_auth_json

CREATED: dict[str, object] = {
    "type": "response.created",
    "response": {"id": "resp_1", "model": "gpt-5", "status": "in_progress"},
}
COMPLETED: dict[str, object] = {
    "type": "response.completed",
    "response": {"id": "resp_1", "model": "gpt-5", "status": "completed", "output": [], "usage": {}},
}

#: name -> (extra headers, events) the hostile upstream answers with
OBJECT_ID = {"an": "object"}
ANSWERS: dict[str, tuple[dict[str, str], list[dict[str, object]]]] = {
    "non_latin1_header": ({"x-codex-plan-type": "plus ✓ ünicode"}, [CREATED, COMPLETED]),
    "unhashable_item_id": (
        {},
        [
            CREATED,
            {"type": "response.output_item.added", "output_index": 0, "item": {"id": OBJECT_ID, "type": "message"}},
            {"type": "response.output_text.delta", "item_id": OBJECT_ID, "output_index": 0, "delta": "hi"},
            {"type": "response.output_item.done", "output_index": 0, "item": {"id": OBJECT_ID, "type": "message"}},
            COMPLETED,
        ],
    ),
    "wrong_types": (
        {},
        [
            CREATED,
            {"type": "response.output_item.added", "output_index": "zero", "item": ["not", "an", "object"]},
            {"type": "response.output_text.delta", "item_id": 5, "output_index": [], "delta": {"no": "text"}},
            COMPLETED,
        ],
    ),
}


class HostileUpstream:
    def __init__(self) -> None:
        self.answer = "non_latin1_header"
        self.base_url = ""
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        headers, events = ANSWERS[self.answer]
        response = web.StreamResponse(headers={"content-type": "text/event-stream", **headers})
        await response.prepare(request)
        for event in events:
            await response.write(b"event: %s\ndata: %s\n\n" % (str(event["type"]).encode(), json.dumps(event).encode()))
        await response.write_eof()
        return response

    def run(self) -> None:
        async def main() -> None:
            app = web.Application()
            app.router.add_post("/responses", self._responses)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            port = self._runner.addresses[0][1]
            self.base_url = f"http://127.0.0.1:{port}"
            self._loop = asyncio.get_running_loop()
            self._ready.set()
            while True:
                await asyncio.sleep(3600)

        asyncio.run(main())

    def start(self) -> None:
        threading.Thread(target=self.run, daemon=True).start()
        assert self._ready.wait(10)


@pytest.fixture(scope="module")
def hostile() -> HostileUpstream:
    upstream = HostileUpstream()
    upstream.start()
    return upstream


@pytest.fixture(scope="module")
def base_url(hostile: HostileUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home: Path = tmp_path_factory.mktemp("home")
    write_auth_json(home)
    settings = settings_for(home, hostile.base_url, max_concurrent_streams=1, upstream_retries=0)
    with serve_in_thread(create_app(settings)) as served:
        yield served.base_url


def _active_streams(base_url: str) -> float:
    text = httpx.get(base_url + "/metrics", timeout=10).text
    match = re.search(r"^codexgate_active_streams (\S+)$", text, re.M)
    assert match is not None
    return float(match.group(1))


@pytest.mark.parametrize("answer", sorted(ANSWERS))
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/chat/completions", {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}], "stream": True}),
        ("/v1/chat/completions", {"model": "gpt-5", "messages": [{"role": "user", "content": "hi"}]}),
        ("/v1/responses", {"model": "gpt-5", "input": "hi", "stream": True}),
        ("/v1/responses", {"model": "gpt-5", "input": "hi"}),
    ],
    ids=["chat-stream", "chat", "responses-stream", "responses"],
)
def test_slot_is_given_back_after_every_hostile_answer(
    hostile: HostileUpstream, base_url: str, answer: str, path: str, body: dict[str, object]
) -> None:
    hostile.answer = answer
    for _ in range(3):  # with one slot, a leak would turn the second request into a 429
        response = httpx.post(base_url + path, json=body, timeout=20)
        assert response.status_code in (200, 502), response.text
        assert response.headers["content-type"].startswith(("application/json", "text/event-stream"))
        if response.status_code == 502:
            error = response.json()["error"]
            assert set(error) >= {"message", "type", "param", "code"}
            assert error["code"] == "upstream_protocol_error", error
        elif response.headers["content-type"].startswith("text/event-stream"):
            # what could be translated is, and the stream ends cleanly or with one protocol error
            assert response.text.endswith("\n\n")
            tail = response.text.rstrip().rsplit("\n\n", 1)[-1]
            clean = tail == "data: [DONE]" or tail.startswith("event: response.completed")
            assert clean or "upstream_protocol_error" in tail, tail
        assert "✓" not in response.headers.get("x-codex-plan-type", "")
        assert _active_streams(base_url) == 0
