"""Chat ``messages`` → Responses ``instructions`` + ``input`` items (pure; 400s name the param).

Policy:

* **system / developer**: the leading run of ``system``/``developer`` messages (before the first
  other message) becomes ``instructions`` (texts joined by a blank line). Later ones become
  ``developer`` input messages in place. Role ``system`` never appears in ``input``.
* **user**: a string, or parts: ``text`` → ``input_text``; ``image_url {url, detail}`` → ``input_image
  {image_url, detail}`` (http(s) and ``data:`` URLs; detail defaults to ``auto``); ``file {file_data,
  file_id, filename}`` → ``input_file``; Responses-style ``input_text``/``input_image``/``input_file``
  parts pass through (without ``id``). ``input_audio`` → 400 (no equivalent).
* **assistant**: text (string or ``text`` parts) → a message with ``output_text`` parts; ``refusal``
  parts/field → ``refusal`` parts; each ``tool_calls[i]`` → ``function_call {call_id, name, arguments}``
  (``custom`` calls → ``custom_tool_call``); legacy ``function_call`` → ``function_call`` with a
  generated ``call_id``. An assistant message with nothing in it is skipped. ``reasoning_content`` sent
  back by clients is dropped (there is nothing to round-trip it to).
* **tool** → ``function_call_output {call_id: tool_call_id, output}``; legacy **function** (by
  ``name``) → the output of the latest unanswered legacy call with that name. An output whose call
  is not in the history → 400 (the backend would reject it less clearly).
* Message ``name`` fields and all ``id``s are dropped: item ids are never sent upstream.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from codexgate.errors import APIError, invalid_request

Item = dict[str, Any]
_INSTRUCTION_ROLES = ("system", "developer")
_ROLES = ("system", "developer", "user", "assistant", "tool", "function")


def _text_of(content: Any, param: str, allowed: tuple[str, ...] = ("text", "input_text")) -> str:
    """The text of a string or a list of text parts."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_request(f"'{param}' must be a string or a list of content parts.", param=param)
    texts: list[str] = []
    for j, part in enumerate(content):
        if isinstance(part, str):
            texts.append(part)
            continue
        if not isinstance(part, Mapping) or part.get("type") not in allowed:
            kind = part.get("type") if isinstance(part, Mapping) else type(part).__name__
            raise invalid_request(
                f"'{param}[{j}]' has type {kind!r}; only text parts are allowed here.", param=f"{param}[{j}]"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise invalid_request(f"'{param}[{j}].text' must be a string.", param=f"{param}[{j}].text")
        texts.append(text)
    return "".join(texts)


def _image_part(part: Mapping[str, Any], param: str) -> Item:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, Mapping) else image
    if not isinstance(url, str) or not url:
        raise invalid_request(f"'{param}.image_url.url' must be a non-empty string.", param=f"{param}.image_url")
    detail = image.get("detail") if isinstance(image, Mapping) else None
    if detail is None:
        detail = "auto"
    if detail not in ("auto", "low", "high", "original"):
        raise invalid_request(f"'{param}.image_url.detail' must be auto, low or high.", param=f"{param}.image_url")
    return {"type": "input_image", "image_url": url, "detail": detail}


def _file_part(part: Mapping[str, Any], param: str) -> Item:
    file = part.get("file")
    if not isinstance(file, Mapping):
        raise invalid_request(f"'{param}.file' must be an object.", param=f"{param}.file")
    result: Item = {"type": "input_file"}
    for key in ("file_data", "file_id", "filename", "file_url"):
        value = file.get(key)
        if value is not None:
            if not isinstance(value, str):
                raise invalid_request(f"'{param}.file.{key}' must be a string.", param=f"{param}.file.{key}")
            result[key] = value
    if not any(key in result for key in ("file_data", "file_id", "file_url")):
        raise invalid_request(f"'{param}.file' needs file_data or file_id.", param=f"{param}.file")
    return result


def _user_content(content: Any, param: str) -> list[Item]:
    if isinstance(content, str):
        return [{"type": "input_text", "text": content}]
    if not isinstance(content, list):
        raise invalid_request(f"'{param}' must be a string or a list of content parts.", param=param)
    parts: list[Item] = []
    for j, part in enumerate(content):
        where = f"{param}[{j}]"
        if isinstance(part, str):
            parts.append({"type": "input_text", "text": part})
            continue
        kind = part.get("type") if isinstance(part, Mapping) else None
        if not isinstance(part, Mapping) or not isinstance(kind, str):
            raise invalid_request(f"'{where}' must be a content part object with a type.", param=where)
        if kind in ("text", "input_text"):
            text = part.get("text")
            if not isinstance(text, str):
                raise invalid_request(f"'{where}.text' must be a string.", param=f"{where}.text")
            parts.append({"type": "input_text", "text": text})
        elif kind == "image_url":
            parts.append(_image_part(part, where))
        elif kind == "file":
            parts.append(_file_part(part, where))
        elif kind in ("input_image", "input_file"):
            parts.append({key: value for key, value in part.items() if key != "id"})
        elif kind == "input_audio":
            raise invalid_request(
                f"'{where}' is an input_audio part; audio input is not supported by this backend.", param=where
            )
        else:
            raise invalid_request(f"'{where}' has an unsupported content part type {kind!r}.", param=where)
    return parts


def _arguments(value: Any, param: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list):
        return orjson.dumps(value).decode()
    raise invalid_request(f"'{param}' must be a JSON string.", param=param)


def _name(value: Any, param: str) -> str:
    if not isinstance(value, str) or not value:
        raise invalid_request(f"'{param}' must be a non-empty string.", param=param)
    return value


class _Converter:
    def __init__(self) -> None:
        self.instructions: list[str] = []
        self.items: list[Item] = []
        self.open_calls: set[str] = set()  # call_ids without output yet
        self.all_calls: set[str] = set()
        self.legacy_calls: list[tuple[str, str]] = []  # (name, call_id) without output yet

    def message(self, i: int, message: Any, leading: bool) -> bool:
        """Convert one message; return whether the leading system block continues."""
        param = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise invalid_request(f"'{param}' must be an object.", param=param)
        role = message.get("role")
        if role not in _ROLES:
            raise invalid_request(
                f"'{param}.role' is {role!r}; expected one of {', '.join(_ROLES)}.", param=f"{param}.role"
            )
        content = message.get("content")
        if role in _INSTRUCTION_ROLES:
            text = _text_of(content, f"{param}.content")
            if leading:
                self.instructions.append(text)
                return True
            self.items.append(
                {"type": "message", "role": "developer", "content": [{"type": "input_text", "text": text}]}
            )
        elif role == "user":
            self.items.append(
                {"type": "message", "role": "user", "content": _user_content(content, f"{param}.content")}
            )
        elif role == "assistant":
            self.assistant(i, message)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise invalid_request(f"'{param}.tool_call_id' is required for tool messages.", f"{param}.tool_call_id")
            self.output(call_id, content, param, f"{param}.tool_call_id")
        else:  # legacy "function"
            name = _name(message.get("name"), f"{param}.name")
            for k in range(len(self.legacy_calls) - 1, -1, -1):
                if self.legacy_calls[k][0] == name:
                    call_id = self.legacy_calls.pop(k)[1]
                    break
            else:
                raise invalid_request(
                    f"'{param}' answers function {name!r}, but no earlier assistant function_call names it.",
                    param=f"{param}.name",
                )
            self.output(call_id, content, param, f"{param}.name")
        return False

    def output(self, call_id: str, content: Any, param: str, id_param: str) -> None:
        if call_id not in self.all_calls:
            raise invalid_request(
                f"'{id_param}' is {call_id!r}, but no earlier assistant tool call has that id.", param=id_param
            )
        self.open_calls.discard(call_id)
        text = _text_of(content, f"{param}.content")
        self.items.append({"type": "function_call_output", "call_id": call_id, "output": text})

    def assistant(self, i: int, message: Mapping[str, Any]) -> None:
        param = f"messages[{i}]"
        content = message.get("content")
        parts: list[Item] = []
        if isinstance(content, list):
            for j, part in enumerate(content):
                if isinstance(part, Mapping) and part.get("type") == "refusal":
                    refusal = part.get("refusal")
                    if not isinstance(refusal, str):
                        raise invalid_request(f"'{param}.content[{j}].refusal' must be a string.", f"{param}.content")
                    parts.append({"type": "refusal", "refusal": refusal})
                else:
                    text = _text_of([part], f"{param}.content", ("text", "output_text"))
                    if text:
                        parts.append({"type": "output_text", "text": text})
        else:
            text = _text_of(content, f"{param}.content")
            if text:
                parts.append({"type": "output_text", "text": text})
        refusal = message.get("refusal")
        if isinstance(refusal, str) and refusal and not any(p["type"] == "refusal" for p in parts):
            parts.append({"type": "refusal", "refusal": refusal})
        if parts:
            self.items.append({"type": "message", "role": "assistant", "content": parts})
        tool_calls = message.get("tool_calls")
        if tool_calls is not None:
            if not isinstance(tool_calls, list):
                raise invalid_request(f"'{param}.tool_calls' must be a list.", param=f"{param}.tool_calls")
            for j, call in enumerate(tool_calls):
                self.tool_call(call, f"{param}.tool_calls[{j}]")
        legacy = message.get("function_call")
        if legacy is not None:
            where = f"{param}.function_call"
            if not isinstance(legacy, Mapping):
                raise invalid_request(f"'{where}' must be an object.", param=where)
            name = _name(legacy.get("name"), f"{where}.name")
            call_id = f"call_legacy_{i}"
            self.legacy_calls.append((name, call_id))
            self.add_call(call_id, name, _arguments(legacy.get("arguments"), f"{where}.arguments"))

    def tool_call(self, call: Any, where: str) -> None:
        if not isinstance(call, Mapping):
            raise invalid_request(f"'{where}' must be an object.", param=where)
        call_id = _name(call.get("id"), f"{where}.id")
        if call.get("type") == "custom":
            custom = call.get("custom")
            if not isinstance(custom, Mapping):
                raise invalid_request(f"'{where}.custom' must be an object.", param=f"{where}.custom")
            name = _name(custom.get("name"), f"{where}.custom.name")
            value = custom.get("input")
            self.all_calls.add(call_id)
            self.open_calls.add(call_id)
            self.items.append(
                {
                    "type": "custom_tool_call",
                    "call_id": call_id,
                    "name": name,
                    "input": value if isinstance(value, str) else "",
                }
            )
            return
        function = call.get("function")
        if not isinstance(function, Mapping):
            raise invalid_request(f"'{where}.function' must be an object.", param=f"{where}.function")
        name = _name(function.get("name"), f"{where}.function.name")
        self.add_call(call_id, name, _arguments(function.get("arguments"), f"{where}.function.arguments"))

    def add_call(self, call_id: str, name: str, arguments: str) -> None:
        self.all_calls.add(call_id)
        self.open_calls.add(call_id)
        self.items.append({"type": "function_call", "call_id": call_id, "name": name, "arguments": arguments})


def convert_messages(messages: Any) -> tuple[str | None, list[Item]]:
    """``(instructions or None, input items)`` for a Chat ``messages`` list; raises 400s."""
    if not isinstance(messages, list):
        raise invalid_request("'messages' must be a list of messages.", param="messages")
    if not messages:
        raise invalid_request("'messages' must contain at least one message.", param="messages")
    converter = _Converter()
    leading = True
    for i, message in enumerate(messages):
        leading = converter.message(i, message, leading)
    instructions = "\n\n".join(converter.instructions) if converter.instructions else None
    return instructions, converter.items


__all__ = ["APIError", "convert_messages"]
