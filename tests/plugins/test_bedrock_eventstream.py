"""The fake server's AWS event-stream encoder, checked with botocore's own parser."""

from __future__ import annotations

import binascii
import json
import struct

import pytest
from botocore.eventstream import ChecksumMismatch, EventStreamBuffer
from hypothesis import given
from hypothesis import strategies as st

from paid_hooks.testing.fake.bedrock_format import encode_event_message

HEADERS = {":event-type": "metadata", ":content-type": "application/json",
           ":message-type": "event"}


def parse(data: bytes, split_every: int | None = None) -> list:
    buffer = EventStreamBuffer()
    messages = []
    step = split_every or len(data) or 1
    for start in range(0, len(data), step):
        buffer.add_data(data[start:start + step])
        messages.extend(buffer)
    return messages


def test_one_message_round_trips():
    payload = json.dumps({"usage": {"inputTokens": 5, "outputTokens": 7}}).encode()
    raw = encode_event_message(HEADERS, payload)
    [message] = parse(raw)
    assert message.headers == HEADERS
    assert message.payload == payload
    total, headers_length = struct.unpack(">II", raw[:8])
    assert total == len(raw)
    assert message.prelude.total_length == len(raw)
    assert message.prelude.headers_length == headers_length
    assert struct.unpack(">I", raw[8:12])[0] == binascii.crc32(raw[:8])
    assert struct.unpack(">I", raw[-4:])[0] == binascii.crc32(raw[:-4])
    response = message.to_response_dict()
    assert response["status_code"] == 200
    assert response["body"] == payload


def test_string_headers_are_type_7():
    raw = encode_event_message({":event-type": "chunk"}, b"{}")
    # prelude(8) + prelude crc(4) + name length(1) + name(11) + type byte
    assert raw[12] == len(":event-type")
    assert raw[12 + 1 + 11] == 7
    assert struct.unpack(">H", raw[25:27])[0] == len("chunk")


def test_corruption_is_detected_by_botocore():
    raw = bytearray(encode_event_message(HEADERS, b'{"a":1}'))
    raw[-6] ^= 0xFF  # flip a payload byte: the message CRC no longer matches
    with pytest.raises(ChecksumMismatch):
        parse(bytes(raw))


def test_a_stream_split_anywhere_parses_the_same():
    raw = b"".join(encode_event_message({**HEADERS, ":event-type": f"e{i}"},
                                        json.dumps({"i": i}).encode()) for i in range(5))
    for split in (1, 3, 7, 64, len(raw)):
        messages = parse(raw, split)
        assert [m.headers[":event-type"] for m in messages] == [f"e{i}" for i in range(5)]
        assert [json.loads(m.payload) for m in messages] == [{"i": i} for i in range(5)]


@given(
    headers=st.dictionaries(
        st.text(min_size=1, max_size=40).filter(lambda s: len(s.encode()) < 256),
        st.text(max_size=200), max_size=6),
    payload=st.binary(max_size=2000),
    split=st.integers(min_value=1, max_value=97),
)
def test_any_headers_and_payload_round_trip(headers, payload, split):
    [message] = parse(encode_event_message(headers, payload), split)
    assert message.headers == headers
    assert message.payload == payload
