"""Capture the system prompt the user's own Codex CLI sends, to reuse it as ``instructions``.

A local endpoint on 127.0.0.1 plays a Responses API server; the ``codex`` binary runs one
``codex exec`` turn against it through a custom model provider in a temporary ``CODEX_HOME``. What
it sends as its system prompt — the ``instructions`` field (older versions) or its leading
``developer`` input messages (recent ones) — is the captured text. Nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

import orjson
from aiohttp import web

CAPTURE_KEY_ENV = "CODEXGATE_CAPTURE_KEY"


def extract_system_prompt(body: dict[str, Any]) -> str | None:
    """The ``instructions`` field, else the text of the leading ``developer``/``system`` messages."""
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions.strip():
        return instructions.strip()
    texts: list[str] = []
    for item in body.get("input") or []:
        if not isinstance(item, dict) or item.get("role") not in ("developer", "system"):
            break
        content = item.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                str(part.get("text"))
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    joined = "\n\n".join(text.strip() for text in texts if text.strip())
    return joined or None


def _sse(event: dict[str, Any]) -> bytes:
    return b"event: " + str(event["type"]).encode() + b"\ndata: " + orjson.dumps(event) + b"\n\n"


def _minimal_stream(model: str) -> bytes:
    response = {"id": "resp_capture", "object": "response", "created_at": 0, "model": model, "output": []}
    item = {
        "id": "msg_capture",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": [{"type": "output_text", "text": "OK", "annotations": []}],
    }
    usage = {
        "input_tokens": 1,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 1,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 2,
    }
    events = [
        {"type": "response.created", "sequence_number": 0, "response": {**response, "status": "in_progress"}},
        {
            "type": "response.output_item.added",
            "sequence_number": 1,
            "output_index": 0,
            "item": {**item, "content": []},
        },
        {
            "type": "response.output_text.delta",
            "sequence_number": 2,
            "output_index": 0,
            "item_id": "msg_capture",
            "content_index": 0,
            "delta": "OK",
        },
        {"type": "response.output_item.done", "sequence_number": 3, "output_index": 0, "item": item},
        {
            "type": "response.completed",
            "sequence_number": 4,
            "response": {**response, "status": "completed", "output": [item], "usage": usage},
        },
    ]
    return b"".join(_sse(event) for event in events)


def _write_provider_config(home: Path, port: int, model: str) -> None:
    """A Codex CLI config whose only provider is the local capture endpoint (no update check)."""
    (home / "config.toml").write_text(
        f'model = "{model}"\nmodel_provider = "capture"\ncheck_for_update_on_startup = false\n\n'
        "[model_providers.capture]\n"
        'name = "capture"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\n'
        f'env_key = "{CAPTURE_KEY_ENV}"\n'
        'wire_api = "responses"\nrequest_max_retries = 0\nstream_max_retries = 0\n'
    )


async def capture_codex_prompt(codex: str, model: str, timeout_seconds: float = 120.0) -> str:
    """Run ``codex exec`` once against a local endpoint; return the system prompt it sent."""
    bodies: list[dict[str, Any]] = []

    async def responses(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if isinstance(body, dict):
            bodies.append(body)
        answer = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await answer.prepare(request)
        await answer.write(_minimal_stream(model))
        await answer.write_eof()
        return answer

    async def models(_request: web.Request) -> web.Response:
        return web.json_response({"models": [], "data": []})

    app = web.Application()
    app.router.add_post("/v1/responses", responses)
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        with tempfile.TemporaryDirectory(prefix="codexgate-capture-") as home:
            _write_provider_config(Path(home), port, model)
            env = {**os.environ, "CODEX_HOME": home, "HOME": home, CAPTURE_KEY_ENV: "capture"}
            process = await asyncio.create_subprocess_exec(
                codex,
                "exec",
                "--skip-git-repo-check",
                "Reply with OK.",
                cwd=home,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            try:
                await asyncio.wait_for(process.communicate(), timeout_seconds)
            except TimeoutError:
                process.kill()
                await process.wait()
                if not bodies:
                    raise RuntimeError("the Codex CLI sent no request before timing out") from None
    finally:
        await runner.cleanup()
    for body in bodies:
        prompt = extract_system_prompt(body)
        if prompt:
            return prompt
    raise RuntimeError("the Codex CLI sent no system prompt" if bodies else "the Codex CLI sent no request")
