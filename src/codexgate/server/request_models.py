"""Request models: they validate what the gateway must understand and keep everything else.

Unknown fields, tool types and item types pass through (``extra="allow"``) so new client features
are forwarded instead of rejected. The detailed per-message checks live in the protocol mapper,
which names the exact ``param`` of a bad value. These models also document the API in OpenAPI.

**Client-chosen strings are bounded** (issue 20, item 5): they reach log lines, usage rows, metrics
labels and upstream headers, so a client must not be able to make them huge or put control
characters in them. Each breach is a 400 naming the field:

* ``model``: 1 to :data:`MAX_MODEL_LENGTH` (256) characters, no control characters;
* ``user``, ``safety_identifier``: at most :data:`MAX_IDENTIFIER_LENGTH` (256) characters;
* ``prompt_cache_key`` (it becomes the upstream ``session_id`` header when the client sends none):
  at most 256 printable ASCII characters;
* ``metadata``: at most 16 pairs, keys up to 64 and values up to 512 characters (OpenAI's own limits);
* the ``session_id`` / ``session-id`` headers (sent upstream as they are):
  :func:`check_session_headers`, at most 256 printable ASCII characters.

Tool and function names are left to the backend (it refuses bad ones with a 400 of its own); they
reach no label, row or header here. Types the gateway itself reads are strict: ``stream`` must be a
boolean, ``reasoning`` an object, ``include`` a list of strings.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, StringConstraints

from codexgate.errors import invalid_request

__all__ = [
    "MAX_IDENTIFIER_LENGTH",
    "MAX_MODEL_LENGTH",
    "ChatCompletionRequest",
    "ChatMessage",
    "ResponsesRequest",
    "check_session_headers",
]

MAX_MODEL_LENGTH: Final = 256
MAX_IDENTIFIER_LENGTH: Final = 256
SESSION_HEADERS: Final = ("session_id", "session-id")

#: no C0 controls and no DEL (a model name goes into logs, rows and labels)
ModelName = Annotated[
    StrictStr, StringConstraints(min_length=1, max_length=MAX_MODEL_LENGTH, pattern=r"^[^\x00-\x1f\x7f]*$")
]
Identifier = Annotated[StrictStr, StringConstraints(max_length=MAX_IDENTIFIER_LENGTH)]
#: visible ASCII and spaces only: it may be sent upstream as a header value
HeaderSafe = Annotated[StrictStr, StringConstraints(max_length=MAX_IDENTIFIER_LENGTH, pattern=r"^[\x20-\x7e]*$")]
MetadataKey = Annotated[str, StringConstraints(max_length=64)]
MetadataValue = Annotated[StrictStr, StringConstraints(max_length=512)]
Metadata = Annotated[dict[MetadataKey, MetadataValue], Field(max_length=16)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Bounded(_Open):
    """The client-chosen identifiers both APIs share."""

    model: ModelName
    user: Identifier | None = None
    safety_identifier: Identifier | None = None
    prompt_cache_key: HeaderSafe | None = None
    metadata: Metadata | None = None


class ChatMessage(_Open):
    role: str
    content: Any = None


class ChatCompletionRequest(_Bounded):
    messages: list[ChatMessage] = Field(min_length=1)
    stream: StrictBool | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream_options: dict[str, Any] | None = None
    n: int | None = None


class ResponsesRequest(_Bounded):
    input: str | list[dict[str, Any]] | None = None
    instructions: str | None = None
    stream: StrictBool | None = None
    tools: list[dict[str, Any]] | None = None
    previous_response_id: str | None = None
    reasoning: dict[str, Any] | None = None
    include: list[StrictStr] | None = None


def check_session_headers(headers: Mapping[str, str]) -> None:
    """400 for a ``session_id`` / ``session-id`` header that could not be sent upstream as it is."""
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value is None:
            continue
        if len(value) > MAX_IDENTIFIER_LENGTH or not all(" " <= char <= "~" for char in value):
            raise invalid_request(
                f"The {name} header must be at most {MAX_IDENTIFIER_LENGTH} printable ASCII characters.",
                param=name,
                code="invalid_header",
            )
