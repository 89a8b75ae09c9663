"""Rebuild a response's output items from its stream events (shared by both aggregators).

``response.completed`` may carry ``output: []`` although deltas carried text, so the items are
built from the events: ``output_item.added`` opens an item, deltas append to its parts, ``.done``
events and ``output_item.done`` give final values (a final value wins over the deltas when it is
at least as long — it is the authoritative text — else the streamed text is kept). Items that
appear only in the terminal ``response.output`` are taken from there. Order is ``output_index``.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from codexgate.protocol import shapes as ev

Item = dict[str, Any]


def _longer(streamed: str, final: Any) -> str:
    return final if isinstance(final, str) and len(final) >= len(streamed) else streamed


class OutputBuilder:
    """Accumulates items by output key; :meth:`items` returns them in output order."""

    def __init__(self) -> None:
        self._items: dict[Any, Item] = {}
        self._order: dict[Any, int] = {}  # output key → sort position
        self._texts: dict[tuple[Any, str, Any], list[str]] = {}  # (key, field, index) → pieces
        self._annotations: dict[tuple[Any, Any], list[dict[str, Any]]] = {}  # (key, content index)

    # -- feeding ----------------------------------------------------------------------------

    def feed(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        if not isinstance(kind, str) or not kind.startswith("response."):
            return
        index = event.get("output_index")
        key = event.get("item_id") if index is None else index
        if kind in _DELTA_FIELDS:
            delta = event.get("delta")
            if isinstance(delta, str) and delta:
                field, index_name = _DELTA_FIELDS[kind]
                self._texts.setdefault((key, field, event.get(index_name)), []).append(delta)
                self._touch(key, index)
        elif kind == ev.OUTPUT_ITEM_ADDED or kind == ev.OUTPUT_ITEM_DONE:
            item = event.get("item")
            if isinstance(item, Mapping):
                self._touch(key, index)
                # A copy of its own: content parts are filled in below, never into the caller's event.
                self._items[key] = copy.deepcopy(dict(item))
        elif kind in _DONE_FIELDS:
            field, index_name, value_name = _DONE_FIELDS[kind]
            value = event.get(value_name)
            if isinstance(value, str):
                pieces = self._texts.setdefault((key, field, event.get(index_name)), [])
                merged = _longer("".join(pieces), value)
                pieces[:] = [merged]
                self._touch(key, index)
        elif kind == ev.ANNOTATION_ADDED:
            annotation = event.get("annotation")
            if isinstance(annotation, Mapping):
                self._annotations.setdefault((key, event.get("content_index")), []).append(dict(annotation))
        elif kind == ev.CONTENT_PART_ADDED or kind == ev.CONTENT_PART_DONE:
            part = event.get("part")
            item = self._items.get(key)
            position = event.get("content_index")
            if isinstance(part, Mapping) and item is not None and isinstance(position, int):
                content = item.setdefault("content", [])
                if isinstance(content, list):
                    while len(content) <= position:
                        content.append({})
                    if kind == ev.CONTENT_PART_DONE or not content[position]:
                        content[position] = dict(part)

    def feed_final_output(self, output: Any) -> None:
        """Take items from a terminal ``response.output`` that the events never showed."""
        if not isinstance(output, list):
            return
        known_ids = {item.get("id") for item in self._items.values()}
        for position, item in enumerate(output):
            if not isinstance(item, Mapping) or position in self._items:
                continue
            if item.get("id") is not None and item.get("id") in known_ids:
                continue
            self._touch(position, position)
            self._items[position] = copy.deepcopy(dict(item))

    def _touch(self, key: Any, index: Any) -> None:
        if key not in self._order:
            self._order[key] = index if isinstance(index, int) else 1_000_000 + len(self._order)

    # -- results ----------------------------------------------------------------------------

    def items(self) -> list[Item]:
        """Every item with the streamed text folded in, in output order."""
        result: list[Item] = []
        for key in sorted(self._order, key=self._order.__getitem__):
            item = self._items.get(key)
            if item is None:
                item = self._guess_item(key)
                if item is None:
                    continue
            result.append(self._complete(key, dict(item)))
        return result

    def _guess_item(self, key: Any) -> Item | None:
        """An item whose ``output_item`` events never came: rebuild it from its deltas."""
        fields = {field for (k, field, _i) in self._texts if k == key}
        if "text" in fields or "refusal" in fields:
            return {"type": "message", "role": "assistant", "content": []}
        if "summary" in fields or "reasoning" in fields:
            return {"type": "reasoning", "summary": []}
        return None

    def _pieces(self, key: Any, field: str, index: Any) -> str | None:
        pieces = self._texts.get((key, field, index))
        return None if pieces is None else "".join(pieces)

    def _complete(self, key: Any, item: Item) -> Item:
        kind = item.get("type")
        if kind == "message":
            content = [dict(part) if isinstance(part, Mapping) else {} for part in item.get("content") or []]
            indexes = {i for (k, f, i) in self._texts if k == key and f in ("text", "refusal")}
            for index in sorted(i for i in indexes if isinstance(i, int)):
                while len(content) <= index:
                    content.append({})
            for position, part in enumerate(content):
                text = self._pieces(key, "text", position)
                refusal = self._pieces(key, "refusal", position)
                if refusal is not None or part.get("type") == "refusal":
                    part["type"] = "refusal"
                    part["refusal"] = _longer(refusal or "", part.get("refusal"))
                elif text is not None or part.get("type") in (None, "output_text"):
                    part["type"] = "output_text"
                    part["text"] = _longer(text or "", part.get("text"))
                    annotations = self._annotations.get((key, position))
                    if not part.get("annotations") and annotations:
                        part["annotations"] = list(annotations)
                    part.setdefault("annotations", [])
            item["content"] = [part for part in content if part]
        elif kind == "function_call":
            item["arguments"] = _longer(self._pieces(key, "arguments", None) or "", item.get("arguments"))
        elif kind == "custom_tool_call":
            item["input"] = _longer(self._pieces(key, "input", None) or "", item.get("input"))
        elif kind == "reasoning":
            for field, tag in (("summary", "summary_text"), ("content", "reasoning_text")):
                source = "summary" if field == "summary" else "reasoning"
                parts = [dict(p) if isinstance(p, Mapping) else {} for p in item.get(field) or []]
                found = [i for (k, f, i) in self._texts if k == key and f == source and isinstance(i, int)]
                while found and len(parts) <= max(found):
                    parts.append({"type": tag, "text": ""})
                for position, part in enumerate(parts):
                    part.setdefault("type", tag)
                    part["text"] = _longer(self._pieces(key, source, position) or "", part.get("text"))
                if parts or field == "summary":
                    item[field] = parts
        return item


_DELTA_FIELDS: dict[str, tuple[str, str]] = {
    ev.OUTPUT_TEXT_DELTA: ("text", "content_index"),
    ev.REFUSAL_DELTA: ("refusal", "content_index"),
    ev.ARGUMENTS_DELTA: ("arguments", "-"),
    ev.CUSTOM_INPUT_DELTA: ("input", "-"),
    ev.SUMMARY_TEXT_DELTA: ("summary", "summary_index"),
    ev.REASONING_TEXT_DELTA: ("reasoning", "content_index"),
}
_DONE_FIELDS: dict[str, tuple[str, str, str]] = {
    ev.OUTPUT_TEXT_DONE: ("text", "content_index", "text"),
    ev.REFUSAL_DONE: ("refusal", "content_index", "refusal"),
    ev.ARGUMENTS_DONE: ("arguments", "-", "arguments"),
    ev.CUSTOM_INPUT_DONE: ("input", "-", "input"),
    ev.SUMMARY_TEXT_DONE: ("summary", "summary_index", "text"),
    ev.REASONING_TEXT_DONE: ("reasoning", "content_index", "text"),
}
