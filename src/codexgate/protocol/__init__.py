"""The protocol core: pure translation between the APIs (no I/O, no clock, no ids made here).

Import from the modules; nothing is re-exported here."""

__all__ = [
    "aggregate",
    "chat_chunks",
    "chat_messages",
    "chat_to_responses",
    "outcome",
    "output_items",
    "responses_passthrough",
    "shapes",
    "sse_decoder",
    "sse_writer",
    "stream_translator",
]
