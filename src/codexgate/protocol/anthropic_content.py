"""Anthropic ``system`` and ``messages`` → Responses ``instructions`` and ``input`` items (pure).

Rules (issue 13, "Mapping"):

* ``system`` (a string or text blocks): lines starting with ``x-anthropic-billing-header`` are not
  instructions and are dropped; blocks are joined by a blank line.
* a ``role: "system"`` message anywhere in ``messages`` → a ``developer`` message at that place.
* user blocks: ``text`` → ``input_text``; ``image`` (``base64`` → a ``data:`` URL, ``url``) →
  ``input_image``; ``document`` (PDF ``base64`` → ``input_file``, ``url`` → ``input_file``,
  ``text`` / ``content`` sources → ``input_text``); ``tool_result`` → ``function_call_output`` with its
  text (``is_error: true`` → the text prefixed with :data:`TOOL_ERROR_MARKER`). The backend takes only
  text outputs, so images inside tool results follow, after the run of outputs, as ``input_image``
  parts of one user message (introduced by a line naming the call). A ``tool_result`` whose
  ``tool_use_id`` matches no earlier ``tool_use`` → 400.
* assistant blocks: ``text`` → ``output_text``; ``tool_use`` → ``function_call`` (``id`` →
  ``call_id``, ``input`` → JSON ``arguments``); ``thinking`` with a signature that ``verify_thinking``
  accepts → the original reasoning item (``encrypted_content``); a signature it refuses and
  ``redacted_thinking`` are dropped silently.
* unknown block types and unknown fields (``cache_control``, beta blocks, ``server_tool_use`` history)
  are ignored, never refused. Wrong types of known fields → 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import orjson

from codexgate.errors import invalid_request
from codexgate.protocol.anthropic_signature import SignedReasoning

__all__ = ["BILLING_HEADER_PREFIX", "TOOL_ERROR_MARKER", "ThinkingVerifier", "convert_messages", "system_text"]

Item = dict[str, Any]
ThinkingVerifier = Callable[[str], SignedReasoning | None]

BILLING_HEADER_PREFIX = "x-anthropic-billing-header"
TOOL_ERROR_MARKER = "[tool error] "
_ROLES = ("user", "assistant", "system")


def _strip_billing(text: str) -> str:
    if BILLING_HEADER_PREFIX not in text:
        return text
    lines = [line for line in text.split("\n") if not line.lstrip().lower().startswith(BILLING_HEADER_PREFIX)]
    return "\n".join(lines).strip("\n")


def _texts(content: Any, param: str) -> list[str]:
    """The texts of a string or of a list of blocks (non-text blocks ignored)."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        raise invalid_request(f"'{param}' must be a string or a list of content blocks.", param=param)
    texts: list[str] = []
    for j, block in enumerate(content):
        if not isinstance(block, Mapping):
            raise invalid_request(f"'{param}[{j}]' must be a content block object.", param=f"{param}[{j}]")
        if block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise invalid_request(f"'{param}[{j}].text' must be a string.", param=f"{param}[{j}].text")
            texts.append(text)
    return texts


def system_text(system: Any) -> str | None:
    """The instructions in ``system`` (None when absent or empty after dropping the billing line)."""
    if system is None:
        return None
    texts = [_strip_billing(text) for text in _texts(system, "system")]
    joined = "\n\n".join(text for text in texts if text.strip())
    return joined or None


def _source(block: Mapping[str, Any], param: str) -> Mapping[str, Any]:
    source = block.get("source")
    if not isinstance(source, Mapping) or not isinstance(source.get("type"), str):
        raise invalid_request(f"'{param}.source' must be an object with a type.", param=f"{param}.source")
    return source


def _string(mapping: Mapping[str, Any], key: str, param: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value:
        raise invalid_request(f"'{param}.{key}' must be a non-empty string.", param=f"{param}.{key}")
    return value


def image_part(block: Mapping[str, Any], param: str) -> Item:
    source = _source(block, param)
    kind = source["type"]
    where = f"{param}.source"
    if kind == "base64":
        media_type = _string(source, "media_type", where)
        data = _string(source, "data", where)
        return {"type": "input_image", "image_url": f"data:{media_type};base64,{data}", "detail": "auto"}
    if kind == "url":
        return {"type": "input_image", "image_url": _string(source, "url", where), "detail": "auto"}
    raise invalid_request(f"'{where}.type' {kind!r} is not supported for images; use base64 or url.", f"{where}.type")


def document_parts(block: Mapping[str, Any], param: str) -> list[Item]:
    source = _source(block, param)
    kind = source["type"]
    where = f"{param}.source"
    title = block.get("title")
    filename = title if isinstance(title, str) and title else "document.pdf"
    if kind == "base64":
        media_type = _string(source, "media_type", where)
        data = _string(source, "data", where)
        return [{"type": "input_file", "filename": filename, "file_data": f"data:{media_type};base64,{data}"}]
    if kind == "url":
        return [{"type": "input_file", "file_url": _string(source, "url", where)}]
    if kind == "text":
        text = source.get("data")
        if not isinstance(text, str):
            raise invalid_request(f"'{where}.data' must be a string.", param=f"{where}.data")
        return [{"type": "input_text", "text": text}]
    if kind == "content":
        return [{"type": "input_text", "text": text} for text in _texts(source.get("content"), f"{where}.content")]
    raise invalid_request(f"'{where}.type' {kind!r} is not supported for documents.", param=f"{where}.type")


def _block_type(block: Any, param: str) -> str:
    if not isinstance(block, Mapping) or not isinstance(block.get("type"), str):
        raise invalid_request(f"'{param}' must be a content block object with a type.", param=param)
    kind: str = block["type"]
    return kind


class _Converter:
    def __init__(self, verify_thinking: ThinkingVerifier | None) -> None:
        self.verify_thinking = verify_thinking
        self.items: list[Item] = []
        self.calls: set[str] = set()  # tool_use ids seen so far

    def message(self, i: int, message: Any) -> None:
        param = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise invalid_request(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        if role not in _ROLES:
            raise invalid_request(f"'{param}.role' is {role!r}; expected user, assistant or system.", f"{param}.role")
        content = message.get("content")
        where = f"{param}.content"
        if content is None:
            raise invalid_request(f"'{where}' is required.", param=where)
        if role == "system":
            text = "\n\n".join(_texts(content, where))
            self.items.append(
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}
            )
        elif isinstance(content, str):
            if role == "assistant" and not content:
                return  # an empty assistant turn carries nothing
            part = "input_text" if role == "user" else "output_text"
            self.items.append({"type": "message", "role": role, "content": [{"type": part, "text": content}]})
        elif not isinstance(content, list):
            raise invalid_request(f"'{where}' must be a string or a list of content blocks.", param=where)
        elif role == "user":
            self.user(content, where)
        else:
            self.assistant(content, where)

    # -- user -------------------------------------------------------------------------------

    def user(self, blocks: list[Any], param: str) -> None:
        parts: list[Item] = []
        tool_images: list[Item] = []

        def flush_parts() -> None:
            if parts:
                self.items.append({"type": "message", "role": "user", "content": list(parts)})
                parts.clear()

        def flush_images() -> None:
            if tool_images:
                self.items.append({"type": "message", "role": "user", "content": list(tool_images)})
                tool_images.clear()

        for j, block in enumerate(blocks):
            where = f"{param}[{j}]"
            kind = _block_type(block, where)
            if kind == "tool_result":
                flush_parts()
                tool_images += self.tool_result(block, where)
                continue
            flush_images()
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise invalid_request(f"'{where}.text' must be a string.", param=f"{where}.text")
                parts.append({"type": "input_text", "text": text})
            elif kind == "image":
                parts.append(image_part(block, where))
            elif kind == "document":
                parts += document_parts(block, where)
            # anything else (search_result, container_upload, beta blocks …) is ignored
        flush_images()
        flush_parts()

    def tool_result(self, block: Mapping[str, Any], param: str) -> list[Item]:
        """Append the output; return the image parts it held (to follow the run of outputs)."""
        call_id = block.get("tool_use_id")
        if not isinstance(call_id, str) or not call_id:
            raise invalid_request(f"'{param}.tool_use_id' must be a non-empty string.", param=f"{param}.tool_use_id")
        if call_id not in self.calls:
            raise invalid_request(
                f"'{param}.tool_use_id' is {call_id!r}, but no earlier assistant tool_use block has that id.",
                param=f"{param}.tool_use_id",
            )
        content = block.get("content")
        texts: list[str] = []
        images: list[Item] = []
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            for k, inner in enumerate(content):
                where = f"{param}.content[{k}]"
                kind = _block_type(inner, where)
                if kind == "text":
                    texts += _texts([inner], f"{param}.content")
                elif kind == "image":
                    images.append(image_part(inner, where))
                elif kind == "document":
                    texts += [p["text"] for p in document_parts(inner, where) if p["type"] == "input_text"]
        elif content is not None:
            raise invalid_request(f"'{param}.content' must be a string or a list of blocks.", param=f"{param}.content")
        is_error = block.get("is_error")
        if is_error is not None and not isinstance(is_error, bool):
            raise invalid_request(f"'{param}.is_error' must be a boolean.", param=f"{param}.is_error")
        output = "\n".join(texts)
        if is_error:
            output = TOOL_ERROR_MARKER + output
        self.items.append({"type": "function_call_output", "call_id": call_id, "output": output})
        if images:
            intro = {"type": "input_text", "text": f"Images returned by tool call {call_id}:"}
            return [intro, *images]
        return []

    # -- assistant --------------------------------------------------------------------------

    def assistant(self, blocks: list[Any], param: str) -> None:
        texts: list[Item] = []

        def flush() -> None:
            if texts:
                self.items.append({"type": "message", "role": "assistant", "content": list(texts)})
                texts.clear()

        for j, block in enumerate(blocks):
            where = f"{param}[{j}]"
            kind = _block_type(block, where)
            if kind == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise invalid_request(f"'{where}.text' must be a string.", param=f"{where}.text")
                if text:
                    texts.append({"type": "output_text", "text": text})
            elif kind == "tool_use":
                flush()
                self.tool_use(block, where)
            elif kind == "thinking":
                reasoning = self.thinking(block, where)
                if reasoning is not None:
                    flush()
                    self.items.append(reasoning)
            # redacted_thinking, server_tool_use, web_search_tool_result and unknown blocks: dropped
        flush()

    def tool_use(self, block: Mapping[str, Any], param: str) -> None:
        call_id = _string(block, "id", param)
        name = _string(block, "name", param)
        arguments = block.get("input", {})
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, Mapping):
            raise invalid_request(f"'{param}.input' must be an object.", param=f"{param}.input")
        self.calls.add(call_id)
        self.items.append(
            {"type": "function_call", "call_id": call_id, "name": name, "arguments": orjson.dumps(arguments).decode()}
        )

    def thinking(self, block: Mapping[str, Any], param: str) -> Item | None:
        signature = block.get("signature")
        if self.verify_thinking is None or not isinstance(signature, str):
            return None
        signed = self.verify_thinking(signature)
        if signed is None:
            return None
        text = block.get("thinking")
        summary = [{"type": "summary_text", "text": text}] if isinstance(text, str) and text else []
        return {"type": "reasoning", "summary": summary, "encrypted_content": signed.encrypted_content}


def convert_messages(messages: Any, verify_thinking: ThinkingVerifier | None) -> list[Item]:
    """The Responses ``input`` items for Anthropic ``messages``; raises 400 ``APIError``s."""
    if not isinstance(messages, list):
        raise invalid_request("'messages' must be a list of messages.", param="messages")
    if not messages:
        raise invalid_request("'messages' must contain at least one message.", param="messages")
    converter = _Converter(verify_thinking)
    for i, message in enumerate(messages):
        converter.message(i, message)
    return converter.items
