"""Local o200k token counting for count_tokens: known counts, the documented rules, offline."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap

import pytest

from codexgate.errors import APIError
from codexgate.token_count import (
    IMAGE_MAX_TOKENS,
    PDF_MIN_TOKENS,
    PER_MESSAGE,
    PER_REQUEST,
    PER_TOOL,
    count_tokens,
    image_tokens,
    o200k_encoder,
)


def png(width: int, height: int) -> str:
    header = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + width.to_bytes(4, "big") + height.to_bytes(4, "big")
    return base64.b64encode(header + b"\x08\x02\x00\x00\x00" + b"\x00" * 40).decode()


def test_known_o200k_counts() -> None:
    encode = o200k_encoder()
    assert encode("hello world") == 2
    assert encode("Hello, world! 你好") == 6
    assert encode("") == 0
    assert encode("<|endoftext|>") > 1  # special-token text counts as ordinary text, never raises


def test_message_and_system_framing() -> None:
    body = {"system": "hello world", "messages": [{"role": "user", "content": "hello world"}]}
    assert count_tokens(body) == PER_REQUEST + 2 + PER_MESSAGE + 2
    blocks = {
        "system": [{"type": "text", "text": "hello world", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello world"}]}],
    }
    assert count_tokens(blocks) == count_tokens(body)


def test_counts_are_stable_and_grow_with_content() -> None:
    small = {"messages": [{"role": "user", "content": "The quick brown fox."}]}
    large = {"messages": [{"role": "user", "content": "The quick brown fox. " * 50}]}
    assert count_tokens(small) == count_tokens(small)
    assert count_tokens(large) > 10 * (count_tokens(small) - PER_REQUEST - PER_MESSAGE)


def test_tools_count_name_description_and_schema() -> None:
    encode = o200k_encoder()
    schema = {"type": "object", "properties": {"command": {"type": "string"}}}
    tool = {"name": "Bash", "description": "Run a shell command", "input_schema": schema}
    base = {"messages": [{"role": "user", "content": "hi"}]}
    expected = (
        PER_TOOL + encode("Bash") + encode("Run a shell command") + encode(json.dumps(schema, separators=(",", ":")))
    )
    assert count_tokens({**base, "tools": [tool]}) - count_tokens(base) == expected


def test_tool_use_tool_result_and_thinking() -> None:
    encode = o200k_encoder()
    messages = [
        {"role": "user", "content": "go"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "plan it", "signature": "cgs1_" + "A" * 500},
                {"type": "redacted_thinking", "data": "Z" * 500},
                {"type": "tool_use", "id": "t", "name": "Bash", "input": {"command": "ls"}},
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "a.txt"}]},
    ]
    expected = (
        PER_REQUEST
        + 3 * PER_MESSAGE
        + encode("go")
        + encode("plan it")
        + encode("Bash")
        + encode('{"command":"ls"}')
        + encode("a.txt")
    )
    assert count_tokens({"messages": messages}) == expected


def test_images_by_size_rule() -> None:
    assert image_tokens({"type": "base64", "media_type": "image/png", "data": png(100, 75)}) == 10
    assert image_tokens({"type": "base64", "media_type": "image/png", "data": png(4000, 3000)}) == IMAGE_MAX_TOKENS
    assert image_tokens({"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}) == IMAGE_MAX_TOKENS
    assert image_tokens({"type": "url", "url": "https://example.test/x.png"}) == IMAGE_MAX_TOKENS
    gif = base64.b64encode(b"GIF89a" + (300).to_bytes(2, "little") + (250).to_bytes(2, "little") + b"\x00" * 8).decode()
    assert image_tokens({"type": "base64", "media_type": "image/gif", "data": gif}) == 100
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": png(100, 75)}}
    assert count_tokens({"messages": [{"role": "user", "content": [image]}]}) == PER_REQUEST + PER_MESSAGE + 10


def test_documents_by_length_rule() -> None:
    def pdf(data: str) -> dict[str, object]:
        source = {"type": "base64", "media_type": "application/pdf", "data": data}
        return {"messages": [{"role": "user", "content": [{"type": "document", "source": source}]}]}

    framing = PER_REQUEST + PER_MESSAGE
    assert count_tokens(pdf("A" * 40)) == framing + PDF_MIN_TOKENS
    assert count_tokens(pdf("A" * 400_000)) == framing + 300_000 // 32
    text_doc = {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "hello world"}}
    assert count_tokens({"messages": [{"role": "user", "content": [text_doc]}]}) == framing + 2


@pytest.mark.parametrize("body", [[], {"messages": "x"}, {}, {"messages": [5]}])
def test_malformed_bodies_are_400(body: object) -> None:
    with pytest.raises(APIError) as caught:
        count_tokens(body)  # type: ignore[arg-type]
    assert caught.value.status_code == 400


def test_works_with_the_network_off() -> None:
    """A fresh interpreter where every socket connect and DNS lookup fails still loads o200k and counts."""
    code = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network is off in this test")
        socket.socket.connect = refuse
        socket.socket.connect_ex = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        import os
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        from codexgate.token_count import count_tokens
        print(count_tokens({"messages": [{"role": "user", "content": "hello world"}]}))
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert int(result.stdout.strip()) == PER_REQUEST + PER_MESSAGE + 2
