"""Hypothesis strategies for Loxone wire data, shared by the protocol tests."""

from __future__ import annotations

import json

from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    DaytimerEntry,
    DaytimerState,
    MessageIdentifier,
    TextState,
    WeatherEntry,
    WeatherState,
    encode_daytimer_states,
    encode_text_states,
    encode_value_states,
    encode_weather_states,
)

raw_uuids = st.binary(min_size=16, max_size=16)
int32s = st.integers(min_value=-(2**31), max_value=2**31 - 1)
uint32s = st.integers(min_value=0, max_value=2**32 - 1)
# NaN never equals itself, so round trips compare NaN-free doubles; NaN is covered separately.
doubles = st.floats(allow_nan=False)

value_states = st.lists(st.tuples(raw_uuids, doubles), max_size=20).map(tuple)

text_states = st.lists(
    st.builds(TextState, uuid=raw_uuids, text=st.text(max_size=40), icon_uuid=raw_uuids),
    max_size=8,
).map(tuple)

daytimer_entries = st.builds(DaytimerEntry, int32s, int32s, int32s, int32s, doubles)
daytimer_states = st.lists(
    st.builds(
        DaytimerState,
        uuid=raw_uuids,
        default_value=doubles,
        entries=st.lists(daytimer_entries, max_size=5).map(tuple),
    ),
    max_size=5,
).map(tuple)

weather_entries = st.builds(
    WeatherEntry,
    int32s,
    int32s,
    int32s,
    int32s,
    int32s,
    doubles,
    doubles,
    doubles,
    doubles,
    doubles,
    doubles,
)
weather_states = st.lists(
    st.builds(
        WeatherState,
        uuid=raw_uuids,
        last_update=uint32s,
        entries=st.lists(weather_entries, max_size=4).map(tuple),
    ),
    max_size=4,
).map(tuple)

# A logical Miniserver message: (identifier, payload), payload None for payload-less identifiers.
TableMessage = tuple[MessageIdentifier, bytes | str | None]

_table_messages = st.one_of(
    value_states.map(lambda s: (MessageIdentifier.VALUE_STATES, encode_value_states(s))),
    text_states.map(lambda s: (MessageIdentifier.TEXT_STATES, encode_text_states(s))),
    daytimer_states.map(lambda s: (MessageIdentifier.DAYTIMER_STATES, encode_daytimer_states(s))),
    weather_states.map(lambda s: (MessageIdentifier.WEATHER_STATES, encode_weather_states(s))),
)
_text_messages = st.one_of(
    st.just(
        '{"LL":{"control":"dev/sps/LoxAPPversion3","value":"2024-01-01 10:00:00","Code":"200"}}'
    ),
    st.text(max_size=40),
).map(lambda text: (MessageIdentifier.TEXT, text))
_file_messages = st.one_of(st.text(max_size=60), st.binary(max_size=60)).map(
    lambda content: (MessageIdentifier.FILE, content)
)
_payloadless = st.sampled_from([MessageIdentifier.KEEPALIVE, MessageIdentifier.OUT_OF_SERVICE]).map(
    lambda identifier: (identifier, None)
)

logical_messages = st.one_of(_table_messages, _text_messages, _file_messages, _payloadless)

# --- hostile values: what a broken or malicious Miniserver may put where a number or text goes ---
# Raw JSON literals (text), so that they can hold what json.dumps never writes: integers of
# thousands of digits, NaN and the infinities (which Python's json reads), deep nesting.

_UINT32_EDGES = [-(2**31) - 1, -1, 0, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63, 2**64]
hostile_numbers = st.one_of(
    st.sampled_from(_UINT32_EDGES).map(str),
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.sampled_from(
        [
            "1" + "0" * 400,  # passes for an int, but float() of it overflows
            "9" * 5000,  # beyond Python's int digit limit: json.loads refuses it
            "1e400",  # json reads it as inf
            "-1e400",
            "NaN",
            "Infinity",
            "-Infinity",
            "1.5",
            "200.0",
            "-0.0",
            "4294967295.0",
        ]
    ),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)
hostile_strings = st.one_of(
    st.sampled_from(
        [
            '"²"',  # isdigit() but not int()-able
            '"\\u0661\\u0662"',  # Arabic-Indic digits
            '"\\ud800"',  # a lone surrogate: str.encode() fails on it
            '""',
            '" 42 "',
            '"-1"',
            '"4294967296"',
            '"' + "9" * 5000 + '"',
            '"' + "x" * 70_000 + '"',
            '"a\\nb\\u0000c"',
            '"SHA256"',
            '"SHA-512"',
            '"2021-01-20 21:15:12"',
            "\"{'snr': 5}\"",
        ]
    ),
    st.text(max_size=24).map(lambda text: json.dumps(text, ensure_ascii=False)),
)
hostile_structures = st.sampled_from(
    [
        "true",
        "false",
        "null",
        "[]",
        "{}",
        '{"a": 1}',
        "[1, 2, 3]",
        '[{"x": null}]',
        "[" * 5000 + "]" * 5000,  # nested beyond the recursion limit
    ]
)
hostile_json_literals = st.one_of(hostile_numbers, hostile_strings, hostile_structures)

# Text that is not a usable reply at all: garbage, half JSON, a fenc-like Base64 blob.
garbage_texts = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        [
            "",
            "{",
            '{"LL": ',
            '{"LL": []}',
            '{"LL": {"Code": "200"}',
            "bm90IGEgY2lwaGVy",
            "<html><body><errorcode>500</errorcode></body></html>",
        ]
    ),
)
