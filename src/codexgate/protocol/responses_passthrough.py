"""The Responses passthrough: upstream Responses events to the client's Responses stream (pure).

Events are forwarded one by one, re-encoded; only the ``model`` inside ``response`` objects is set
back to the name the client asked for, and the backend's own ``codex.rate_limits`` events are kept
back unless the client is the Codex CLI (other clients' typed parsers know only the standard events).
A stream that ends without a terminal event, or fails, ends with one ``error`` event. What happened
(usage, rate limits, the error) is left on the converter for the caller to record.
"""

from __future__ import annotations

from typing import Any

from codexgate.errors import APIError
from codexgate.protocol.sse_writer import encode_event

__all__ = ["OUTPUT_EVENTS", "TERMINAL_EVENTS", "ResponsesPassthrough"]

TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
OUTPUT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.custom_tool_call_input.delta",
        "response.output_item.added",
    }
)


class ResponsesPassthrough:
    """Responses events -> the same events, re-encoded, with the client's model name."""

    def __init__(self, requested_model: str, *, forward_codex_events: bool) -> None:
        self.requested_model = requested_model
        self.forward_codex_events = forward_codex_events
        self.terminal: dict[str, Any] | None = None
        self.error: dict[str, Any] | None = None
        self.rate_limits: dict[str, Any] | None = None
        self._output = False
        self._sequence = 0

    def convert(self, events: list[dict[str, Any]]) -> bytes:
        if not events or self.terminal is not None:
            return b""
        out: list[bytes] = []
        for event in events:
            kind = event.get("type")
            if kind == "codexgate.protocol_error":
                self.error = {"code": "invalid_upstream_event", "message": str(event.get("message"))}
                out.append(self._error_event(self.error["code"], self.error["message"]))
                self.terminal = event
                break
            response = event.get("response")
            if isinstance(response, dict) and "model" in response:
                event = {**event, "response": {**response, "model": self.requested_model}}
            if kind in OUTPUT_EVENTS:
                self._output = True
            elif kind == "codex.rate_limits":
                self.rate_limits = event
                if not self.forward_codex_events:
                    continue
            elif kind == "error":
                self.error = {"code": event.get("code"), "message": event.get("message")}
            sequence = event.get("sequence_number")
            if isinstance(sequence, int):
                self._sequence = sequence
            out.append(encode_event(event))
            if kind in TERMINAL_EVENTS:
                self.terminal = event
                if kind == "response.failed" and self.error is None and isinstance(response, dict):
                    self.error = response.get("error") or {"code": "response_failed"}
                break
        return b"".join(out)

    def _error_event(self, code: str, message: str) -> bytes:
        self._sequence += 1
        return encode_event(
            {"type": "error", "code": code, "message": message, "param": None, "sequence_number": self._sequence}
        )

    def finish(self) -> bytes:
        if self.terminal is not None:
            return b""
        self.error = {"code": "stream_incomplete", "message": "stream closed before response.completed"}
        return self._error_event(self.error["code"], self.error["message"])

    def fail(self, error: APIError) -> bytes:
        self.error = {"code": error.code, "message": error.message}
        return self._error_event(error.code or "upstream_error", error.message)

    def has_output(self) -> bool:
        return self._output

    @property
    def usage(self) -> Any:
        """The terminal response's ``usage`` (None before it, or without one)."""
        response = self.terminal.get("response") if self.terminal else None
        return response.get("usage") if isinstance(response, dict) else None

    @property
    def error_code(self) -> str | None:
        """The code of the error the stream ended with; None when it did not fail."""
        if self.error is None:
            return None
        code = self.error.get("code")
        return code if isinstance(code, str) else "response_failed"
