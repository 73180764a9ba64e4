from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    ESTIMATED_FLAG,
    HEADER_SIZE,
    MessageHeader,
    MessageIdentifier,
    RemoteProtocolError,
    build_header,
    encode_header,
    parse_header,
)


def test_every_header_vector(vectors):
    for vector in vectors["headers"]:
        raw = bytes.fromhex(vector["hex"])
        header = parse_header(raw)
        assert header.identifier == vector["identifier"], vector["source"]
        assert header.estimated is vector["estimated"], vector["source"]
        assert header.length == vector["length"], vector["source"]
        assert encode_header(header) == raw
        assert build_header(header.identifier, header.length, estimated=header.estimated) == raw


def test_estimated_is_the_most_significant_bit_not_bit_zero():
    assert ESTIMATED_FLAG == 0x80
    assert parse_header(bytes.fromhex("0301800054560100")).estimated
    # Several third-party clients test 0x01; a Miniserver never sets it for "estimated".
    low_bit = parse_header(bytes.fromhex("0301010054560100"))
    assert not low_bit.estimated
    assert encode_header(low_bit) == bytes.fromhex("0301010054560100")


def test_payload_expectations():
    assert MessageHeader(MessageIdentifier.VALUE_STATES, 24).expects_payload
    assert not MessageHeader(MessageIdentifier.VALUE_STATES, 0).expects_payload
    assert not MessageHeader(MessageIdentifier.FILE, 100, estimated=True).expects_payload
    assert not MessageHeader(MessageIdentifier.KEEPALIVE, 100).expects_payload
    assert not MessageHeader(MessageIdentifier.OUT_OF_SERVICE, 5).expects_payload


@pytest.mark.parametrize(
    ("raw", "message", "offset"),
    [
        (bytes.fromhex("03000000"), "8 bytes, got 4", 0),
        (bytes.fromhex("0400000000000000"), "start with 0x03", 0),
        (bytes.fromhex("0308000000000000"), "unknown message identifier 8", 1),
        (bytes.fromhex("03ff000000000000"), "unknown message identifier 255", 1),
    ],
)
def test_bad_headers_name_the_offset(raw, message, offset):
    with pytest.raises(RemoteProtocolError, match=message) as caught:
        parse_header(raw)
    assert caught.value.offset == offset
    assert f"offset {offset}" in str(caught.value)


def test_build_header_rejects_impossible_lengths():
    with pytest.raises(ValueError, match="out of range"):
        build_header(MessageIdentifier.TEXT, -1)
    with pytest.raises(ValueError, match="out of range"):
        build_header(MessageIdentifier.TEXT, 2**32)


@given(
    identifier=st.sampled_from(MessageIdentifier),
    length=st.integers(0, 2**32 - 1),
    estimated=st.booleans(),
    info=st.integers(0, 255),
    reserved=st.integers(0, 255),
)
def test_header_round_trip(identifier, length, estimated, info, reserved):
    raw = build_header(identifier, length, estimated=estimated, info_flags=info, reserved=reserved)
    assert len(raw) == HEADER_SIZE
    header = parse_header(raw)
    assert (header.identifier, header.length, header.estimated) == (identifier, length, estimated)
    assert encode_header(header) == raw


@given(st.binary(min_size=HEADER_SIZE, max_size=HEADER_SIZE))
def test_any_eight_bytes_parse_and_re_encode_or_are_rejected(raw):
    try:
        header = parse_header(raw)
    except RemoteProtocolError:
        assert raw[0] != 0x03 or raw[1] > max(MessageIdentifier)
    else:
        assert encode_header(header) == raw
