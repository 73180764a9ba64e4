from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loxone_strategies import logical_messages, value_states

from loxone_trio_exporter.protocol import (
    DaytimerStatesReceived,
    Event,
    FileReceived,
    KeepaliveReceived,
    MessageIdentifier,
    MessageReader,
    OutOfService,
    RemoteProtocolError,
    TextReply,
    TextState,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
    build_header,
    encode_text_states,
    encode_value_states,
    frame_binary_message,
    frame_text_message,
    uuid_from_str,
)

UUID_A = uuid_from_str("0f869a64-0200-0a9b-ffffd4c75dbaf53c")
VERSION_REPLY = (
    '{"LL":{"control":"dev/sps/LoxAPPversion3","value":"2021-01-20 21:15:12","Code":"200"}}'
)


def feed(reader, messages):
    return [event for message in messages if (event := reader.receive(message)) is not None]


def awaits_nothing(reader):
    """No header is pending: an 8-byte keepalive header is read as one, not as a payload."""
    return reader.receive(build_header(MessageIdentifier.KEEPALIVE, 0)) == KeepaliveReceived()


def test_header_then_text_reply():
    reader = MessageReader()
    assert reader.receive(build_header(MessageIdentifier.TEXT, len(VERSION_REPLY))) is None
    event = reader.receive(VERSION_REPLY)
    assert isinstance(event, TextReply)
    assert event.reply is not None
    assert event.reply.value == "2021-01-20 21:15:12"
    assert event.reply.answers("jdev/sps/LoxAPPversion3")
    assert awaits_nothing(reader)


def test_text_reply_that_is_not_ll_json_is_kept_for_the_session_to_decrypt():
    reader = MessageReader()
    cipher = "rJ3XZcwKdfi6A1bK4rvS+KnoeBqBgwEKLUJgNq2UOtG4=="
    (event,) = feed(reader, frame_text_message(MessageIdentifier.TEXT, cipher))
    assert event == TextReply(text=cipher, reply=None)


def test_value_table_header_then_payload_and_joined():
    payload = encode_value_states([(UUID_A, 21.5)])
    header = build_header(MessageIdentifier.VALUE_STATES, len(payload))
    apart = feed(MessageReader(), [header, payload])
    joined = feed(MessageReader(), [header + payload])
    assert apart == joined == [ValueStatesReceived(((UUID_A, 21.5),))]


def test_estimated_header_then_exact_header_then_file_as_text():
    structure = '{"lastModified": "2025-10-23 10:00:00", "msInfo": {"msName": "Zuhause"}}'
    messages = frame_text_message(MessageIdentifier.FILE, structure, estimated_length=87636)
    assert len(messages) == 3
    reader = MessageReader()
    # The estimated header is followed by the exact one: an 8-byte message, not the payload.
    assert reader.receive(messages[0]) is None
    assert reader.receive(messages[1]) is None
    assert reader.receive(messages[2]) == FileReceived(structure)
    assert awaits_nothing(reader)


def test_exact_header_after_an_estimated_one_wins_whatever_its_bit():
    payload = b"\x89PNG-image-bytes"
    reader = MessageReader()
    assert reader.receive(build_header(MessageIdentifier.FILE, 999, estimated=True)) is None
    # The second header also has the bit set; it is the exact one all the same.
    assert (
        reader.receive(build_header(MessageIdentifier.FILE, len(payload), estimated=True)) is None
    )
    assert reader.receive(payload) == FileReceived(payload)


def test_payload_right_after_an_estimated_header_of_the_same_size_is_accepted():
    payload = encode_value_states([(UUID_A, 1.0)])
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.VALUE_STATES, len(payload), estimated=True))
    assert reader.receive(payload) == ValueStatesReceived(((UUID_A, 1.0),))


def test_an_eight_byte_payload_is_a_payload_not_a_header():
    payload = build_header(MessageIdentifier.KEEPALIVE, 0)  # 8 bytes that look like a header
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.FILE, 8))
    assert reader.receive(payload) == FileReceived(payload)


def test_a_new_header_replaces_a_pending_one():
    payload = encode_value_states([(UUID_A, 3.0)])
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.TEXT_STATES, 500))
    assert reader.receive(build_header(MessageIdentifier.VALUE_STATES, len(payload))) is None
    assert reader.receive(payload) == ValueStatesReceived(((UUID_A, 3.0),))


@pytest.mark.parametrize("length", [0, 17])
def test_keepalive_and_out_of_service_never_carry_a_payload(length):
    reader = MessageReader()
    assert reader.receive(build_header(MessageIdentifier.KEEPALIVE, length)) == KeepaliveReceived()
    assert awaits_nothing(reader)
    assert reader.receive(build_header(MessageIdentifier.OUT_OF_SERVICE, length)) == OutOfService()
    assert awaits_nothing(reader)


@pytest.mark.parametrize(
    ("identifier", "event"),
    [
        (MessageIdentifier.TEXT, TextReply(text="", reply=None)),
        (MessageIdentifier.FILE, FileReceived(b"")),
        (MessageIdentifier.VALUE_STATES, ValueStatesReceived(())),
        (MessageIdentifier.TEXT_STATES, TextStatesReceived(())),
        (MessageIdentifier.DAYTIMER_STATES, DaytimerStatesReceived(())),
        (MessageIdentifier.WEATHER_STATES, WeatherStatesReceived(())),
    ],
)
def test_zero_length_payloads_have_no_payload_message(identifier, event):
    reader = MessageReader()
    assert reader.receive(build_header(identifier, 0)) == event
    assert awaits_nothing(reader)


def test_text_frame_after_a_text_header_and_binary_text_payload_agree():
    header = build_header(MessageIdentifier.TEXT, len(VERSION_REPLY))
    as_text = feed(MessageReader(), [header, VERSION_REPLY])
    as_binary = feed(MessageReader(), [header, VERSION_REPLY.encode()])
    assert as_text == as_binary


def test_text_states_table():
    payload = encode_text_states([TextState(UUID_A, "hsv(42,76,77)")], padding_byte=0x29)
    (event,) = feed(MessageReader(), frame_binary_message(MessageIdentifier.TEXT_STATES, payload))
    assert event == TextStatesReceived((TextState(UUID_A, "hsv(42,76,77)"),))


# --- what the reader refuses ----------------------------------------------------------------------


def test_text_frame_without_a_header():
    with pytest.raises(RemoteProtocolError, match="without a header"):
        MessageReader().receive(VERSION_REPLY)


def test_text_frame_where_a_table_was_announced():
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.VALUE_STATES, 24))
    with pytest.raises(RemoteProtocolError, match="binary VALUE_STATES payload was expected"):
        reader.receive("hello")


def test_payload_of_the_wrong_size():
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.VALUE_STATES, 48))
    with pytest.raises(RemoteProtocolError, match="payload of 24 bytes, header announced 48"):
        reader.receive(encode_value_states([(UUID_A, 1.0)]))


def test_pending_payload_that_starts_like_a_bad_header_is_a_size_error():
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.VALUE_STATES, 24))
    with pytest.raises(RemoteProtocolError, match="payload of 8 bytes, header announced 24"):
        reader.receive(bytes.fromhex("0309000000000000"))


def test_short_binary_message_where_a_header_was_expected():
    with pytest.raises(RemoteProtocolError, match="3 bytes where a header") as caught:
        MessageReader().receive(b"\x03\x00\x00")
    assert caught.value.offset == 0


def test_joined_message_with_the_wrong_length_names_the_payload_offset():
    payload = encode_value_states([(UUID_A, 1.0)])
    message = build_header(MessageIdentifier.VALUE_STATES, 48) + payload
    with pytest.raises(RemoteProtocolError, match="joined to a header announcing 48") as caught:
        MessageReader().receive(message)
    assert caught.value.offset == 8


def test_keepalive_with_bytes_attached():
    with pytest.raises(RemoteProtocolError, match="none expected"):
        MessageReader().receive(build_header(MessageIdentifier.KEEPALIVE, 0) + b"xx")


def test_joined_estimated_payloadless_header_is_refused():
    message = build_header(MessageIdentifier.KEEPALIVE, 2, estimated=True) + b"xx"
    with pytest.raises(RemoteProtocolError, match="KEEPALIVE cannot carry a payload"):
        MessageReader().receive(message)


def test_binary_text_reply_that_is_not_utf8():
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.TEXT, 2))
    with pytest.raises(RemoteProtocolError, match="not UTF-8") as caught:
        reader.receive(b"\xc3\x28")
    assert caught.value.offset == 0


def test_malformed_table_payload_is_reported_with_its_offset():
    reader = MessageReader()
    reader.receive(build_header(MessageIdentifier.VALUE_STATES, 25))
    with pytest.raises(RemoteProtocolError, match="not a whole number") as caught:
        reader.receive(bytes(25))
    assert caught.value.offset == 24


# --- properties -----------------------------------------------------------------------------------


def frame(identifier, payload, *, joined, estimated):
    """The messages a Miniserver could send for one logical message, in one of its framings."""
    if payload is None:
        return [build_header(identifier, 0)]
    if isinstance(payload, str):
        messages = frame_text_message(
            identifier, payload, estimated_length=1000 if estimated else None
        )
    else:
        messages = frame_binary_message(
            identifier, payload, estimated_length=1000 if estimated else None
        )
    if joined and isinstance(messages[-1], bytes) and len(messages) >= 2 and payload:
        *rest, header, body = messages
        messages = [*rest, header + body]
    return messages


framings = st.tuples(st.booleans(), st.booleans())


@given(st.lists(st.tuples(logical_messages, framings), max_size=12))
def test_every_framing_of_a_stream_gives_the_same_events(stream):
    plain = []
    varied = []
    for (identifier, payload), (joined, estimated) in stream:
        plain += frame(identifier, payload, joined=False, estimated=False)
        varied += frame(identifier, payload, joined=joined, estimated=estimated)
    reference = feed(MessageReader(), plain)
    assert feed(MessageReader(), varied) == reference
    assert len(reference) == len(stream)


@given(value_states)
def test_value_tables_decode_through_the_reader(states):
    (event,) = feed(
        MessageReader(),
        frame_binary_message(MessageIdentifier.VALUE_STATES, encode_value_states(states)),
    )
    assert event == ValueStatesReceived(states)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_or_raise_remote_protocol_error(data):
    reader = MessageReader()
    try:
        event = reader.receive(data)
    except RemoteProtocolError:
        return
    assert event is None or isinstance(event, Event)


websocket_messages = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=60),
    # Valid-looking headers make the fuzzer reach the payload decoders, not only the header check.
    st.builds(
        lambda identifier, length, estimated: build_header(identifier, length, estimated=estimated),
        st.sampled_from(MessageIdentifier),
        st.integers(0, 140),
        st.booleans(),
    ),
    st.builds(
        lambda identifier, body: build_header(identifier, len(body)) + body,
        st.sampled_from(MessageIdentifier),
        st.binary(max_size=120),
    ),
)


@given(st.lists(websocket_messages, max_size=10))
def test_arbitrary_message_sequences_either_decode_or_raise_remote_protocol_error(messages):
    reader = MessageReader()
    for message in messages:
        try:
            event = reader.receive(message)
        except RemoteProtocolError:
            reader = MessageReader()  # a session restarts with a fresh reader after an error
        else:
            assert event is None or isinstance(event, Event)
