"""Micro-benchmark of the protocol core: upstream SSE bytes → Chat Completions (and Anthropic
Messages) SSE bytes.

Run: ``uv run python bench/bench_translate.py [--repeat N]``. Builds a long, realistic Responses
stream (reasoning summary deltas, 2,000 text deltas, a function call with argument deltas), feeds
its bytes in 4 KiB reads through the decoder, the translator and the writer, and prints the cost
per delta event for each stage and in total (best of N runs), for the chat translator and for the
Messages translator (whose frames are already bytes: it has no separate writer). Not a test: nothing
is asserted.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

from codexgate.protocol.anthropic_stream import MessagesStreamTranslator
from codexgate.protocol.sse_decoder import SSEDecoder
from codexgate.protocol.sse_writer import encode_chunks
from codexgate.protocol.stream_translator import ChatStreamTranslator

WORDS = ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog", ".", " Ünïcode", " ✓"]


def build_stream(text_deltas: int = 2000, reasoning_deltas: int = 300, argument_deltas: int = 200) -> bytes:
    events: list[dict[str, Any]] = []
    base = {"id": "resp_bench", "object": "response", "created_at": 1, "model": "gpt-5", "output": []}
    events.append({"type": "response.created", "response": {**base, "status": "in_progress"}})
    events.append(
        {"type": "response.output_item.added", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning"}}
    )
    for n in range(reasoning_deltas):
        events.append(
            {
                "type": "response.reasoning_summary_text.delta",
                "item_id": "rs_1",
                "output_index": 0,
                "summary_index": n // 100,
                "delta": WORDS[n % len(WORDS)],
                "obfuscation": "abcd",
            }
        )
    events.append({"type": "response.output_item.done", "output_index": 0, "item": {"id": "rs_1", "type": "reasoning"}})
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "content": []}
    events.append({"type": "response.output_item.added", "output_index": 1, "item": msg})
    for n in range(text_deltas):
        events.append(
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 1,
                "content_index": 0,
                "delta": WORDS[n % len(WORDS)],
                "logprobs": [],
                "obfuscation": "wxyz",
            }
        )
    call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "lookup", "arguments": ""}
    events.append({"type": "response.output_item.added", "output_index": 2, "item": call})
    for n in range(argument_deltas):
        piece = '{"q": "' if n == 0 else ('"}' if n == argument_deltas - 1 else "ab")
        events.append(
            {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "output_index": 2, "delta": piece}
        )
    usage = {"input_tokens": 10, "output_tokens": 2500, "total_tokens": 2510}
    events.append({"type": "response.completed", "response": {**base, "status": "completed", "usage": usage}})
    out = []
    for n, event in enumerate(events):
        event["sequence_number"] = n
        out.append(f"event: {event['type']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n")
    return "".join(out).encode()


def reads(data: bytes, size: int = 4096) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def best(function: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    stream = build_stream()
    pieces = reads(stream)
    events = SSEDecoder().feed(stream)
    deltas = sum(1 for e in events if e["type"].endswith(".delta"))

    def decode() -> None:
        decoder = SSEDecoder()
        for piece in pieces:
            decoder.feed(piece)
        decoder.close()

    def translate() -> list[dict[str, Any]]:
        translator = ChatStreamTranslator(
            model="gpt-5-high", include_usage=True, completion_id="chatcmpl-bench", created=1
        )
        chunks: list[dict[str, Any]] = []
        for event in events:
            chunks += translator.feed(event)
        return chunks

    chunks = translate()

    def write() -> None:
        encode_chunks(chunks)

    def total() -> None:
        decoder = SSEDecoder()
        translator = ChatStreamTranslator(
            model="gpt-5-high", include_usage=True, completion_id="chatcmpl-bench", created=1
        )
        feed = translator.feed
        for piece in pieces:
            out: list[dict[str, Any]] = []
            for event in decoder.feed(piece):
                out += feed(event)
            encode_chunks(out)

    def sign(encrypted_content: str, item_id: str | None) -> str:
        return "cgs1_bench"

    def new_messages_translator() -> MessagesStreamTranslator:
        return MessagesStreamTranslator(model="claude-opus-4-1", message_id="msg_bench", sign_reasoning=sign)

    def translate_messages() -> None:
        translator = new_messages_translator()
        frames: list[bytes] = []
        for event in events:
            frames += translator.feed(event)
        b"".join(frames)

    def total_messages() -> None:
        decoder = SSEDecoder()
        feed = new_messages_translator().feed
        for piece in pieces:
            out: list[bytes] = []
            for event in decoder.feed(piece):
                out += feed(event)
            b"".join(out)

    print(f"stream: {len(stream):,} bytes, {len(events):,} events, {deltas:,} delta events, {len(chunks):,} chunks")
    results = {}
    stages: tuple[tuple[str, Callable[[], object]], ...] = (
        ("decoder", decode),
        ("translator", translate),
        ("writer", write),
        ("total", total),
        ("messages translator", translate_messages),
        ("messages total", total_messages),
    )
    for name, function in stages:
        results[name] = best(function, args.repeat) / deltas * 1e6
        print(f"{name:>20}: {results[name]:6.2f} µs per delta event")
    chat_translator = results["translator"] + results["writer"]
    print(f"translation (decoder+translator+writer, one pass): {results['total']:.2f} µs per delta event")
    print(
        f"Messages translation (decoder+translator, one pass): {results['messages total']:.2f} µs per delta event; "
        f"Messages translator {results['messages translator']:.2f} µs vs chat translator+writer "
        f"{chat_translator:.2f} µs ({results['messages translator'] / chat_translator - 1:+.0%})"
    )


if __name__ == "__main__":
    main()
