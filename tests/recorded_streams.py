"""Load the third-party recordings in ``tests/fixtures/recorded/`` as plain Python data.

Every format there (raw SSE ``.bin``, one-JSON-per-line ``.chunks.txt``, ``.json`` bodies, VCR YAML
cassettes whose response is an SSE string or a ``parsed_body``) becomes :class:`Recorded` items::

    from tests.recorded_streams import responses_streams, chat_streams, responses_bodies

    for rec in responses_streams():      # Responses API event streams
        rec.events                       # list of event dicts, in order
        rec.raw                          # the SSE bytes (as recorded, or built from the lines)

Other helpers: :func:`chat_streams` (Chat chunk dicts), :func:`responses_bodies` /
:func:`chat_bodies` (non-streaming JSON bodies), :func:`error_bodies`, :func:`chat_requests` /
:func:`responses_requests` (recorded request bodies), :func:`load_all`, :func:`parse_sse` (a small
reference SSE parser, independent of the product's decoder) and :func:`to_sse`.

A line or ``data:`` that is not valid JSON is kept as
``{"type": "codexgate.protocol_error", "message": ...}`` (what the product's decoder yields).
A ``.chunks.txt`` file holding several responses (several ``response.created``) is split into one
:class:`Recorded` per response, named ``file#0``, ``file#1`` …
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml

FIXTURES_DIR = Path(__file__).parent / "fixtures" / "recorded"
PROTOCOL_ERROR = "codexgate.protocol_error"

Api = Literal["responses", "chat", "other"]
Kind = Literal["stream", "body", "error"]


@dataclass(frozen=True)
class Recorded:
    name: str  # path relative to FIXTURES_DIR, plus "#n" for the n-th interaction/response
    path: Path
    api: Api  # "responses" (/v1/responses), "chat" (/v1/chat/completions) or "other"
    kind: Kind  # "stream" (events), "body" (a JSON answer) or "error" (an error body)
    events: list[dict[str, Any]] = field(default_factory=list)  # stream events / chunks, in order
    raw: bytes | None = None  # SSE bytes of a stream
    body: dict[str, Any] | None = None  # JSON body of a non-streaming answer or error
    request: dict[str, Any] | None = None  # the recorded request body, when the format has one
    status: int = 200

    def __repr__(self) -> str:  # keeps pytest ids and failure output short
        return f"Recorded({self.name!r}, {self.api}, {self.kind})"


def _json_or_error(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        return {"type": PROTOCOL_ERROR, "message": f"not JSON: {exc}"}
    if not isinstance(value, dict):
        return {"type": PROTOCOL_ERROR, "message": "not a JSON object"}
    return value


def parse_sse(raw: bytes) -> list[dict[str, Any]]:
    """Reference SSE parser for well-formed recordings (``\\n`` or ``\\r\\n`` line ends)."""
    text = raw.decode("utf-8").replace("\r\n", "\n")
    events: list[dict[str, Any]] = []
    for block in text.split("\n\n"):
        name = None
        data: list[str] = []
        for line in block.split("\n"):
            if line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
            elif line.startswith("event:"):
                name = line[6:].strip()
        if not data or "\n".join(data).strip() in ("", "[DONE]"):
            continue
        event = _json_or_error("\n".join(data))
        if name and not isinstance(event.get("type"), str):
            event["type"] = name
        events.append(event)
    return events


def to_sse(events: list[dict[str, Any]], *, event_lines: bool = True, done: bool = False) -> bytes:
    """SSE bytes for ``events`` (``event:`` + ``data:`` lines like the Responses API)."""
    out = []
    for event in events:
        head = f"event: {event['type']}\n" if event_lines and isinstance(event.get("type"), str) else ""
        out.append(f"{head}data: {json.dumps(event, ensure_ascii=False)}\n\n")
    if done:
        out.append("data: [DONE]\n\n")
    return "".join(out).encode()


def _api_of(uri: str) -> Api:
    if uri.endswith("/responses"):
        return "responses"
    if uri.endswith("/chat/completions"):
        return "chat"
    return "other"


def _load_cassette(path: Path) -> list[Recorded]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    records: list[Recorded] = []
    for n, interaction in enumerate(document.get("interactions", [])):
        request, response = interaction["request"], interaction["response"]
        api = _api_of(request.get("uri", ""))
        status = int(response.get("status", {}).get("code", 200))
        name = f"{path.relative_to(FIXTURES_DIR)}#{n}"
        common = {"name": name, "path": path, "api": api, "request": request.get("parsed_body"), "status": status}
        body = response.get("body")
        string = body.get("string") if isinstance(body, dict) else None
        if string:
            raw = string.encode("utf-8")
            records.append(Recorded(kind="stream", events=parse_sse(raw), raw=raw, **common))
        elif response.get("parsed_body") is not None:
            parsed = response["parsed_body"]
            kind: Kind = "error" if status >= 400 or ("error" in parsed and "object" not in parsed) else "body"
            records.append(Recorded(kind=kind, body=parsed, **common))
    return records


def _load_chunks(path: Path) -> list[Recorded]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    events = [_json_or_error(line) for line in lines]
    is_chat = any(event.get("object") == "chat.completion.chunk" for event in events)
    # Split a file that holds several responses; a malformed first line still starts one.
    groups: list[list[int]] = []
    for i, event in enumerate(events):
        starts = event.get("type") == "response.created" or (
            i == 0 or events[i - 1].get("type") in ("response.completed", "response.failed", "response.incomplete")
        )
        if not groups or (starts and not is_chat):
            groups.append([])
        groups[-1].append(i)
    records = []
    for n, group in enumerate(groups):
        suffix = f"#{n}" if len(groups) > 1 else ""
        raw = "".join(f"data: {lines[i]}\n\n" for i in group).encode()
        records.append(
            Recorded(
                name=f"{path.relative_to(FIXTURES_DIR)}{suffix}",
                path=path,
                api="chat" if is_chat else "responses",
                kind="stream",
                events=[events[i] for i in group],
                raw=raw,
            )
        )
    return records


def _load_json(path: Path) -> list[Recorded]:
    body = json.loads(path.read_text(encoding="utf-8"))
    name = str(path.relative_to(FIXTURES_DIR))
    if "error" in body and "object" not in body:
        code = body["error"].get("code")
        status = 429 if code in ("insufficient_quota", "rate_limit_exceeded") else 400
        return [Recorded(name=name, path=path, api="responses", kind="error", body=body, status=status)]
    api: Api = "responses" if body.get("object") == "response" else "chat"
    return [Recorded(name=name, path=path, api=api, kind="body", body=body)]


def _load_bin(path: Path) -> list[Recorded]:
    raw = path.read_bytes()
    name = str(path.relative_to(FIXTURES_DIR))
    return [Recorded(name=name, path=path, api="chat", kind="stream", events=parse_sse(raw), raw=raw)]


@cache
def load_all() -> tuple[Recorded, ...]:
    """Every recording, in a stable order."""
    records: list[Recorded] = []
    for path in sorted(FIXTURES_DIR.rglob("*")):
        if path.suffix == ".yaml":
            records += _load_cassette(path)
        elif path.name.endswith(".chunks.txt"):
            records += _load_chunks(path)
        elif path.suffix == ".json":
            records += _load_json(path)
        elif path.suffix == ".bin":
            records += _load_bin(path)
    return tuple(records)


def responses_streams() -> list[Recorded]:
    return [r for r in load_all() if r.api == "responses" and r.kind == "stream"]


def chat_streams() -> list[Recorded]:
    return [r for r in load_all() if r.api == "chat" and r.kind == "stream"]


def responses_bodies() -> list[Recorded]:
    return [r for r in load_all() if r.api == "responses" and r.kind == "body"]


def chat_bodies() -> list[Recorded]:
    return [r for r in load_all() if r.api == "chat" and r.kind == "body"]


def error_bodies() -> list[Recorded]:
    return [r for r in load_all() if r.kind == "error"]


def chat_requests() -> list[Recorded]:
    """Recordings whose request is a Chat Completions body (``rec.request``)."""
    return [r for r in load_all() if r.api == "chat" and isinstance(r.request, dict)]


def responses_requests() -> list[Recorded]:
    return [r for r in load_all() if r.api == "responses" and isinstance(r.request, dict)]


def by_name(name: str) -> Recorded:
    """The recording called ``name`` (see :attr:`Recorded.name`)."""
    for record in load_all():
        if record.name == name:
            return record
    raise KeyError(name)


def stream_from_body(body: dict[str, Any], *, item_events: bool = True) -> list[dict[str, Any]]:
    """The events a server could stream for a non-streaming Response ``body``.

    ``response.created`` (empty output), then per item ``output_item.added`` (text/arguments empty)
    and ``output_item.done`` (the full item) when ``item_events``, then ``response.completed`` with
    the whole body. With ``item_events=False`` the items exist only in the terminal response.
    """
    start = {**body, "status": "in_progress", "output": [], "usage": None}
    events: list[dict[str, Any]] = [{"type": "response.created", "response": start}]
    if item_events:
        for index, item in enumerate(body.get("output", [])):
            empty = {**item}
            if item.get("type") == "message":
                empty["content"] = []
            if item.get("type") == "function_call":
                empty["arguments"] = ""
            events.append({"type": "response.output_item.added", "output_index": index, "item": empty})
            events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    events.append({"type": "response.completed", "response": body})
    return [{**event, "sequence_number": n} for n, event in enumerate(events)]
