"""Hypothesis strategies for Loxone wire data, shared by the protocol tests."""

from __future__ import annotations

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
