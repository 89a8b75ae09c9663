"""Build realistic Responses event sequences for tests (the order real servers use)."""

from __future__ import annotations

from typing import Any

USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 3},
    "output_tokens": 22,
    "output_tokens_details": {"reasoning_tokens": 5},
    "total_tokens": 33,
}


class StreamBuilder:
    def __init__(self, response_id: str = "resp_test", model: str = "gpt-5") -> None:
        self.events: list[dict[str, Any]] = []
        self.response_id = response_id
        self.model = model
        self.output: list[dict[str, Any]] = []
        self._seq = 0

    def add(self, type_: str, **fields: Any) -> StreamBuilder:
        self.events.append({"type": type_, "sequence_number": self._seq, **fields})
        self._seq += 1
        return self

    def _response(self, status: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": 1700000000,
            "status": status,
            "model": self.model,
            "output": [],
            "usage": None,
            "error": None,
            "incomplete_details": None,
            **extra,
        }

    def created(self) -> StreamBuilder:
        self.add("response.created", response=self._response("in_progress"))
        return self.add("response.in_progress", response=self._response("in_progress"))

    def reasoning(self, parts: list[list[str]], *, deltas: bool = True) -> StreamBuilder:
        index, item_id = len(self.output), f"rs_{len(self.output)}"
        self.add(
            "response.output_item.added", output_index=index, item={"id": item_id, "type": "reasoning", "summary": []}
        )
        summary = []
        for s, pieces in enumerate(parts):
            text = "".join(pieces)
            common = {"item_id": item_id, "output_index": index, "summary_index": s}
            self.add("response.reasoning_summary_part.added", **common, part={"type": "summary_text", "text": ""})
            if deltas:
                for piece in pieces:
                    self.add("response.reasoning_summary_text.delta", **common, delta=piece)
            self.add("response.reasoning_summary_text.done", **common, text=text)
            self.add("response.reasoning_summary_part.done", **common, part={"type": "summary_text", "text": text})
            summary.append({"type": "summary_text", "text": text})
        item = {"id": item_id, "type": "reasoning", "summary": summary, "encrypted_content": "gAAA"}
        self.output.append(item)
        return self.add("response.output_item.done", output_index=index, item=item)

    def message(
        self,
        pieces: list[str],
        *,
        refusal: bool = False,
        deltas: bool = True,
        annotations: list[dict[str, Any]] | None = None,
    ) -> StreamBuilder:
        index, item_id = len(self.output), f"msg_{len(self.output)}"
        text = "".join(pieces)
        self.add(
            "response.output_item.added",
            output_index=index,
            item={"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []},
        )
        common = {"item_id": item_id, "output_index": index, "content_index": 0}
        if refusal:
            part: dict[str, Any] = {"type": "refusal", "refusal": text}
            self.add("response.content_part.added", **common, part={"type": "refusal", "refusal": ""})
            if deltas:
                for piece in pieces:
                    self.add("response.refusal.delta", **common, delta=piece)
            self.add("response.refusal.done", **common, refusal=text)
        else:
            part = {"type": "output_text", "text": text, "annotations": annotations or []}
            self.add(
                "response.content_part.added", **common, part={"type": "output_text", "text": "", "annotations": []}
            )
            if deltas:
                for piece in pieces:
                    self.add("response.output_text.delta", **common, delta=piece, logprobs=[])
            for n, annotation in enumerate(annotations or []):
                self.add("response.output_text.annotation.added", **common, annotation_index=n, annotation=annotation)
            self.add("response.output_text.done", **common, text=text, logprobs=[])
        self.add("response.content_part.done", **common, part=part)
        item = {"id": item_id, "type": "message", "role": "assistant", "status": "completed", "content": [part]}
        self.output.append(item)
        return self.add("response.output_item.done", output_index=index, item=item)

    def function_call(
        self, call_id: str, name: str, pieces: list[str], *, deltas: bool = True, done_event: bool = True
    ) -> StreamBuilder:
        index, item_id = len(self.output), f"fc_{len(self.output)}"
        arguments = "".join(pieces)
        added = {"id": item_id, "type": "function_call", "call_id": call_id, "name": name, "arguments": ""}
        self.add("response.output_item.added", output_index=index, item={**added, "status": "in_progress"})
        if deltas:
            for piece in pieces:
                self.add("response.function_call_arguments.delta", item_id=item_id, output_index=index, delta=piece)
        if done_event:
            self.add("response.function_call_arguments.done", item_id=item_id, output_index=index, arguments=arguments)
        item = {**added, "arguments": arguments, "status": "completed"}
        self.output.append(item)
        return self.add("response.output_item.done", output_index=index, item=item)

    def hosted(self, kind: str = "web_search_call") -> StreamBuilder:
        index = len(self.output)
        item = {"id": f"ws_{index}", "type": kind, "status": "completed", "action": {"type": "search", "query": "q"}}
        self.add("response.output_item.added", output_index=index, item={**item, "status": "in_progress"})
        self.add(f"response.{kind}.completed", output_index=index, item_id=item["id"])
        self.output.append(item)
        return self.add("response.output_item.done", output_index=index, item=item)

    def completed(self, usage: dict[str, Any] | None = USAGE, *, keep_output: bool = True) -> StreamBuilder:
        response = self._response("completed", usage=usage, output=self.output if keep_output else [])
        return self.add("response.completed", response=response)

    def incomplete(self, reason: str = "max_output_tokens") -> StreamBuilder:
        response = self._response("incomplete", usage=USAGE, output=self.output, incomplete_details={"reason": reason})
        return self.add("response.incomplete", response=response)

    def failed(self, code: str = "server_error", message: str = "boom") -> StreamBuilder:
        response = self._response("failed", error={"code": code, "message": message})
        return self.add("response.failed", response=response)

    def error(self, code: str = "rate_limit_exceeded", message: str = "slow down") -> StreamBuilder:
        return self.add("error", code=code, message=message, param=None)
