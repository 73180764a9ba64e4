from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from loxone_strategies import daytimer_states, text_states, value_states, weather_states

from loxone_trio_exporter.protocol import (
    NULL_UUID,
    DaytimerEntry,
    DaytimerState,
    RemoteProtocolError,
    TextState,
    WeatherEntry,
    WeatherState,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    encode_daytimer_states,
    encode_text_states,
    encode_value_states,
    encode_weather_states,
    uuid_from_str,
    uuid_to_str,
)

# --- the vectors, exactly ------------------------------------------------------------------------


def test_single_value_event_vector(vectors):
    vector = vectors["value_events"][0]
    payload = bytes.fromhex(vector["hex"])
    decoded = decode_value_states(payload)
    assert [(uuid_to_str(u), v) for u, v in decoded] == [tuple(e) for e in vector["expected"]]
    assert encode_value_states(decoded) == payload


def test_real_showroom_value_table(vectors):
    vector = vectors["value_events"][1]
    payload = bytes.fromhex(vector["hex"])
    decoded = decode_value_states(payload)
    assert len(decoded) == vector["expected_count"] == 79
    first_uuid, first_value = decoded[0]
    assert [uuid_to_str(first_uuid), first_value] == vector["expected_first"]
    assert encode_value_states(decoded) == payload


def test_text_events_with_garbage_padding(vectors):
    vector = vectors["text_events"][0]
    payload = bytes.fromhex(vector["hex"])
    decoded = decode_text_states(payload)
    got = [[uuid_to_str(s.uuid), uuid_to_str(s.icon_uuid), s.text] for s in decoded]
    assert got == vector["expected"]
    # The padding after "hsv(42,76,77)" really is garbage, so a re-encoding differs only there.
    reencoded = encode_text_states(decoded)
    assert len(reencoded) == len(payload)
    assert reencoded != payload
    assert decode_text_states(reencoded) == decoded


def test_truncated_real_text_table_is_an_error_after_five_good_entries(vectors):
    vector = vectors["text_events"][1]
    payload = bytes.fromhex(vector["hex"])
    with pytest.raises(RemoteProtocolError, match="declares 2175 bytes of text") as caught:
        decode_text_states(payload)
    sixth_record = caught.value.offset
    assert sixth_record is not None
    assert sixth_record % 4 == 0
    first_five = decode_text_states(payload[:sixth_record])
    assert len(first_five) == vector["expected_count"] - 1
    assert [uuid_to_str(first_five[0].uuid), uuid_to_str(first_five[0].icon_uuid)] == vector[
        "expected_first_uuid_icon"
    ]
    texts = [s.text for s in first_five]
    for text in vector["expected_texts_include"]:
        assert text in texts
    assert "2017-12-13 16:37:44 +01:00:00" in texts


def test_daytimer_vector(vectors):
    for vector in vectors["daytimer_events"]:
        payload = bytes.fromhex(vector["hex"])
        decoded = decode_daytimer_states(payload)
        got = [
            [
                uuid_to_str(s.uuid),
                s.default_value,
                [[e.mode, e.from_minute, e.to_minute, e.need_activate, e.value] for e in s.entries],
            ]
            for s in decoded
        ]
        assert got == vector["expected"]
        assert encode_daytimer_states(decoded) == payload


def test_weather_vector_with_unaligned_doubles(vectors):
    for vector in vectors["weather_events"]:
        payload = bytes.fromhex(vector["hex"])
        decoded = decode_weather_states(payload)
        got = [
            [
                uuid_to_str(s.uuid),
                s.last_update,
                [
                    [
                        e.timestamp,
                        e.weather_type,
                        e.wind_direction,
                        e.solar_radiation,
                        e.relative_humidity,
                        e.temperature,
                        e.perceived_temperature,
                        e.dew_point,
                        e.precipitation,
                        e.wind_speed,
                        e.barometric_pressure,
                    ]
                    for e in s.entries
                ],
            ]
            for s in decoded
        ]
        assert got == vector["expected"]
        assert encode_weather_states(decoded) == payload


# --- structure rules ------------------------------------------------------------------------------

UUID_A = uuid_from_str("0f869a64-0200-0a9b-ffffd4c75dbaf53c")
UUID_B = uuid_from_str("10a73e3b-017a-1682-ffffacb819d4bca9")


def test_value_table_that_is_not_whole_records_names_the_offset():
    payload = encode_value_states([(UUID_A, 1.0), (UUID_B, 2.0)]) + b"\x01\x02"
    with pytest.raises(RemoteProtocolError, match="not a whole number") as caught:
        decode_value_states(payload)
    assert caught.value.offset == 48


def test_value_nan_and_infinities_survive():
    decoded = decode_value_states(
        encode_value_states([(UUID_A, math.nan), (UUID_B, math.inf), (UUID_A, -math.inf)])
    )
    assert math.isnan(decoded[0][1])
    assert decoded[1][1] == math.inf
    assert decoded[2][1] == -math.inf


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 5])
def test_text_record_sizes_follow_the_padding_rule(length):
    text = "x" * length
    encoded = encode_text_states([TextState(UUID_A, text)])
    assert len(encoded) == 36 + length + (4 - length % 4) % 4
    assert decode_text_states(encoded) == (TextState(UUID_A, text, NULL_UUID),)


def test_text_padding_is_never_validated_and_may_be_cut_after_the_last_record():
    states = (TextState(UUID_A, "a"), TextState(UUID_B, "hsv(42,76,77)", UUID_A))
    garbage = encode_text_states(states, padding_byte=0x29)
    assert decode_text_states(garbage) == states
    assert decode_text_states(garbage[:-3]) == states  # last record's 3 padding bytes missing


def test_text_that_is_not_utf8_is_replaced_not_fatal():
    payload = struct.pack("<16s16sI", UUID_A, NULL_UUID, 3) + b"\xff\xfeA\x00"
    (state,) = decode_text_states(payload)
    assert state.text == "\ufffd\ufffdA"


def test_text_multibyte_length_counts_bytes():
    state = TextState(UUID_A, "Centrála požáru °C")
    encoded = encode_text_states([state])
    assert struct.unpack_from("<I", encoded, 32)[0] == len(state.text.encode())
    assert decode_text_states(encoded) == (state,)


@pytest.mark.parametrize("cut", [1, 20, 35])
def test_truncated_text_fixed_part(cut):
    payload = encode_text_states([TextState(UUID_A, "ab")]) + b"\x00" * cut
    with pytest.raises(RemoteProtocolError, match="truncated text-state record") as caught:
        decode_text_states(payload)
    assert caught.value.offset == 40


def test_daytimer_errors():
    good = encode_daytimer_states(
        [DaytimerState(UUID_A, 18.0, (DaytimerEntry(1, 360, 480, 0, 22.0),))]
    )
    with pytest.raises(RemoteProtocolError, match="declares 1 entries") as caught:
        decode_daytimer_states(good[:-1])
    assert caught.value.offset == 0
    negative = struct.pack("<16sdi", UUID_A, 0.0, -1)
    with pytest.raises(RemoteProtocolError, match="declares -1 entries"):
        decode_daytimer_states(negative)
    with pytest.raises(RemoteProtocolError, match="truncated daytimer record") as caught:
        decode_daytimer_states(good + good[:27])
    assert caught.value.offset == len(good)


def test_weather_errors():
    entry = WeatherEntry(1000, 1, 180, 500, 65, 22.5, 21.0, 15.0, 0.0, 5.5, 1013.25)
    good = encode_weather_states([WeatherState(UUID_A, 600000000, (entry, entry))])
    assert len(good) == 24 + 2 * 68
    with pytest.raises(RemoteProtocolError, match="declares 2 entries"):
        decode_weather_states(good[:-68])
    with pytest.raises(RemoteProtocolError, match="declares -5 entries"):
        decode_weather_states(struct.pack("<16sIi", UUID_A, 0, -5))
    with pytest.raises(RemoteProtocolError, match="truncated weather record"):
        decode_weather_states(good + b"\x00" * 23)


def test_a_weather_table_without_a_subscription():
    # 48 bytes = actual and forecast with no entries, as captured from a real Miniserver.
    payload = encode_weather_states([WeatherState(UUID_A, 0, ()), WeatherState(UUID_B, 0, ())])
    assert len(payload) == 48
    assert [s.entries for s in decode_weather_states(payload)] == [(), ()]


def test_encoders_refuse_wrong_sized_uuids():
    with pytest.raises(ValueError, match="16 bytes"):
        encode_value_states([(b"short", 1.0)])
    with pytest.raises(ValueError, match="16 bytes"):
        encode_text_states([TextState(UUID_A, "x", icon_uuid=b"")])


def test_empty_tables():
    assert decode_value_states(b"") == ()
    assert decode_text_states(b"") == ()
    assert decode_daytimer_states(b"") == ()
    assert decode_weather_states(b"") == ()


# --- encode then decode is the identity -----------------------------------------------------------


@given(value_states)
def test_value_round_trip(states):
    assert decode_value_states(encode_value_states(states)) == states


@given(text_states, st.integers(0, 255))
def test_text_round_trip_whatever_the_padding(states, padding_byte):
    assert decode_text_states(encode_text_states(states, padding_byte=padding_byte)) == states


@given(daytimer_states)
def test_daytimer_round_trip(states):
    assert decode_daytimer_states(encode_daytimer_states(states)) == states


@given(weather_states)
def test_weather_round_trip(states):
    assert decode_weather_states(encode_weather_states(states)) == states


@given(value_states)
def test_decoding_a_memoryview_gives_the_same_result(states):
    payload = encode_value_states(states)
    assert decode_value_states(memoryview(payload)) == decode_value_states(payload)
