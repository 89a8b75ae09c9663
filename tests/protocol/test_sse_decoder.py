"""The incremental SSE decoder: any split, any line ending, never raises."""

from __future__ import annotations

import json
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from codexgate.protocol.aggregate import ChatCompletionAggregator
from codexgate.protocol.sse_decoder import PROTOCOL_ERROR, SSEDecoder
from codexgate.protocol.sse_writer import DONE, KEEPALIVE, encode_chunk, encode_chunks, encode_event
from codexgate.protocol.stream_translator import ChatStreamTranslator
from tests.recorded_streams import by_name

EVENTS = [
    {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}},
    {"type": "response.output_text.delta", "sequence_number": 1, "delta": "héllo ✓ 日本"},
    {"type": "response.completed", "sequence_number": 2, "response": {"id": "r"}},
]


def sse(events: list[dict], newline: str = "\n") -> bytes:
    text = "".join(
        f"event: {e['type']}{newline}data: {json.dumps(e, ensure_ascii=False)}{newline}{newline}" for e in events
    )
    return text.encode()


def decode_all(pieces: list[bytes]) -> list[dict]:
    decoder = SSEDecoder()
    out = []
    for piece in pieces:
        out += decoder.feed(piece)
    return out + decoder.close()


def test_whole_stream() -> None:
    assert decode_all([sse(EVENTS)]) == EVENTS


def test_byte_by_byte_splits_utf8_characters() -> None:
    data = sse(EVENTS)
    assert decode_all([data[i : i + 1] for i in range(len(data))]) == EVENTS


def test_crlf_and_cr_line_endings_even_split_between_cr_and_lf() -> None:
    for newline in ("\r\n", "\r"):
        data = sse(EVENTS, newline)
        assert decode_all([data]) == EVENTS
        assert decode_all([data[i : i + 1] for i in range(len(data))]) == EVENTS


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    first, second = sse(EVENTS[:1]), sse(EVENTS[1:2])
    assert decoder.feed(first + second[:10]) == EVENTS[:1]
    assert decoder.feed(second[10:]) == EVENTS[1:2]


def test_multiline_data_comments_data_before_event_and_done() -> None:
    data = (
        b": keep-alive\n\n"
        b'data: {"type": "a",\ndata:  "x": 1}\n\n'
        b'data: {"x": 2}\nevent: named\n\n'
        b"id: 5\nretry: 10\n: comment\n\n"
        b"data: [DONE]\n\n"
    )
    assert decode_all([data]) == [{"type": "a", "x": 1}, {"x": 2, "type": "named"}]


def test_json_type_wins_over_event_name_and_missing_sequence_number_is_fine() -> None:
    assert decode_all([b'event: wrong\ndata: {"type": "right"}\n\n']) == [{"type": "right"}]


def test_json_without_type_or_event_name_is_returned_as_is() -> None:
    assert decode_all([b'data: {"object": "chat.completion.chunk"}\n\n']) == [{"object": "chat.completion.chunk"}]


def test_non_json_data_is_a_protocol_error_event() -> None:
    events = decode_all([b"data: {not json\n\n", b"data: [1, 2]\n\n", b'data: {"type": "ok"}\n\n'])
    assert [e["type"] for e in events] == [PROTOCOL_ERROR, PROTOCOL_ERROR, "ok"]
    assert "{not json" in events[0]["message"]


def test_invalid_utf8_is_a_protocol_error_not_an_exception() -> None:
    assert decode_all([b'data: {"type": "\xff\xfe"}\n\n'])[0]["type"] == PROTOCOL_ERROR


def test_close_flushes_an_event_without_trailing_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b'data: {"type": "last"}') == []
    assert decoder.close() == [{"type": "last"}]
    assert decoder.close() == []


def test_blank_data_is_ignored() -> None:
    assert decode_all([b"data:\n\ndata:   \n\n"]) == []


@given(st.binary(max_size=2000), st.lists(st.integers(min_value=1, max_value=64), max_size=50))
@settings(max_examples=300)
def test_random_bytes_never_raise(data: bytes, sizes: list[int]) -> None:
    decoder = SSEDecoder()
    position = 0
    for size in sizes:
        for event in decoder.feed(data[position : position + size]):
            assert isinstance(event, dict)
        position += size
    decoder.feed(data[position:])
    assert all(isinstance(e, dict) for e in decoder.close())


@given(st.lists(st.integers(min_value=0, max_value=60_000), max_size=40))
@settings(max_examples=100, deadline=None)  # the first example loads the recorded cassettes
def test_any_split_of_a_recorded_stream_gives_the_same_events(cuts: list[int]) -> None:
    raw = by_name("pydantic-ai/test_openai_responses_streaming_usage.yaml#0").raw
    assert raw is not None
    points = sorted({c % (len(raw) + 1) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert decode_all(pieces) == decode_all([raw])


def test_writer_frames() -> None:
    chunk = {"id": "c", "choices": [{"delta": {"content": "é"}}]}
    assert encode_chunk(chunk) == b'data: {"id":"c","choices":[{"delta":{"content":"\xc3\xa9"}}]}\n\n'
    assert encode_chunks([chunk, chunk]) == encode_chunk(chunk) * 2
    assert encode_chunks([]) == b""
    assert (
        encode_event({"type": "response.created", "a": 1})
        == b'event: response.created\ndata: {"type":"response.created","a":1}\n\n'
    )
    assert encode_event({"a": 1}) == b'data: {"a":1}\n\n'
    assert DONE == b"data: [DONE]\n\n" and KEEPALIVE.startswith(b":")
    assert decode_all([encode_event(EVENTS[1]), KEEPALIVE, DONE]) == [EVENTS[1]]


# -- bounds: event size limit, linear cost ----------------------------------------------------


def test_event_over_the_limit_ends_decoding_with_a_protocol_error() -> None:
    decoder = SSEDecoder(max_event_size=1000)
    big = b'data: {"type": "x", "delta": "' + b"a" * 2000 + b'"}\n\n'
    events = decoder.feed(sse(EVENTS[:1]) + big + sse(EVENTS[1:]))
    assert events[:-1] == EVENTS[:1]  # what came before the big event is kept
    assert events[-1]["type"] == PROTOCOL_ERROR and "1000 bytes" in events[-1]["message"]
    assert decoder.failed
    assert decoder.feed(sse(EVENTS)) == [] and decoder.close() == []  # decoding has ended


def test_unfinished_event_over_the_limit_fails_before_its_end_arrives() -> None:
    decoder = SSEDecoder(max_event_size=10_000)
    assert decoder.feed(sse(EVENTS[:1]) + b'data: {"type": "x", "delta": "') == EVENTS[:1]
    results = [decoder.feed(b"a" * 1000) for _ in range(9)]
    assert results == [[]] * 9 and not decoder.failed
    (error,) = decoder.feed(b"a" * 1000)
    assert error["type"] == PROTOCOL_ERROR and decoder.failed
    assert decoder.feed(b'"}\n\n') == [] and decoder.close() == []


def test_event_at_the_limit_decodes_and_one_byte_more_fails_at_every_split() -> None:
    data = sse(EVENTS)
    sizes = [len(block) + 1 for block in data.split(b"\n\n") if block]  # lines with their line ends
    largest = max(sizes)
    for limit, fails in ((largest, False), (largest - 1, True)):
        for cut in range(len(data) + 1):
            decoder = SSEDecoder(max_event_size=limit)
            events = decoder.feed(data[:cut]) + decoder.feed(data[cut:]) + decoder.close()
            if fails:
                assert events[-1]["type"] == PROTOCOL_ERROR, cut
                assert [e for e in events if e["type"] != PROTOCOL_ERROR] == EVENTS[: len(events) - 1], cut
            else:
                assert events == EVENTS, cut


def test_crlf_stream_splits_at_every_byte_with_a_tight_limit() -> None:
    data = sse(EVENTS, "\r\n")
    limit = max(len(block) + 1 for block in sse(EVENTS).split(b"\n\n") if block)
    for cut in range(len(data) + 1):
        for second in (cut, min(len(data), cut + 1), min(len(data), cut + 7)):
            decoder = SSEDecoder(max_event_size=limit)
            pieces = [data[:cut], data[cut:second], data[second:]]
            assert [e for p in pieces for e in decoder.feed(p)] + decoder.close() == EVENTS, (cut, second)


def test_huge_line_in_64_kib_pieces_is_linear() -> None:
    """32 MiB of one line, fed in 64 KiB reads: one pass (a copy of the buffer per read took seconds)."""
    size = 32 * 1024 * 1024
    piece = b"a" * 65536
    decoder = SSEDecoder(max_event_size=size + 1024)
    start = time.perf_counter()
    assert decoder.feed(b'data: {"type": "big", "delta": "') == []
    for _ in range(size // len(piece)):
        assert decoder.feed(piece) == []
    (event,) = decoder.feed(b'"}\n\n')
    elapsed = time.perf_counter() - start
    assert event["type"] == "big" and len(event["delta"]) == size
    assert elapsed < 5.0, elapsed


def test_huge_line_with_the_default_limit_is_refused_and_the_rest_dropped_quickly() -> None:
    decoder = SSEDecoder()
    piece = b"b" * 65536
    start = time.perf_counter()
    out: list[dict] = decoder.feed(b"data: ")
    for _ in range(256 * 1024 * 1024 // len(piece)):  # 256 MiB without a newline
        out += decoder.feed(piece)
    out += decoder.close()
    assert time.perf_counter() - start < 5.0
    assert [e["type"] for e in out] == [PROTOCOL_ERROR]
    assert str(16 * 1024 * 1024) in out[0]["message"]


def test_many_small_reads_of_one_event_still_decode() -> None:
    data = sse([{"type": "x", "delta": "z" * 5000}])
    decoder = SSEDecoder(max_event_size=6000)
    events = [e for i in range(0, len(data), 3) for e in decoder.feed(data[i : i + 3])]
    assert events == [{"type": "x", "delta": "z" * 5000}]


def test_oversize_event_is_an_upstream_protocol_error_for_both_kinds_of_answer() -> None:
    stream = sse(EVENTS[:2]) + b'data: {"type": "response.output_text.delta", "delta": "' + b"x" * 5000 + b'"}\n\n'
    stream += sse(EVENTS[2:])  # the terminal event after it is never seen

    decoder = SSEDecoder(max_event_size=4096)
    translator = ChatStreamTranslator(model="m", include_usage=False, completion_id="c", created=1)
    for event in decoder.feed(stream) + decoder.close():
        translator.feed(event)
    assert translator.error is not None and translator.error.code == "upstream_protocol_error"
    assert translator.error.status_code == 502

    decoder = SSEDecoder(max_event_size=4096)
    aggregator = ChatCompletionAggregator(model="m", completion_id="c", created=1)
    for event in decoder.feed(stream) + decoder.close():
        aggregator.feed(event)
    aggregator.finish()
    assert aggregator.error is not None and aggregator.error.code == "upstream_protocol_error"
