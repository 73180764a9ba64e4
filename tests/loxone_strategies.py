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

# --- structure documents and state values for the exposition (tests/test_render_equivalence.py) --
# Small pools on purpose: drawn from a few names and UUIDs, the documents share state UUIDs
# between controls, repeat names and uuidActions, and nest list states and subcontrols, which is
# where series identity gets hard. Names carry what the exposition must escape or replace.

#: State UUIDs the generated documents draw from (one in upper case: the loader folds it).
STATE_UUID_POOL = tuple(f"{n:08x}-00{n:02x}-0000-ffff{n * 7919:012x}" for n in range(1, 11))
#: State UUIDs no generated document names: events for them are strangers.
STRANGER_UUIDS = ("deadbeef-0000-0000-ffff000000000001", "deadbeef-0000-0000-ffff000000000002")

_ROOM_UUIDS = ("0f869a64-028d-0cc2-ffffd4c75dbaf53c", "0f869a64-028d-0cc3-ffffd4c75dbaf53c")
_CAT_UUIDS = ("0f869a64-0200-0af4-ffffd4c75dbaf53c", "0f869a64-0200-0af5-ffffd4c75dbaf53c")
_UNKNOWN_PLACE = "0f869a64-ffff-ffff-ffffd4c75dbaf53c"  # named by a control, listed nowhere
PLACE_NAMES = ("Living room", 'Say "hi"', "back\\slash", "two\nlines", "Küche °C", "\ud800", "")
CONTROL_NAMES = ("Light", "Light", "Meter", "Schedule", "Tür", 'a "quoted" one', "x\\y\nz")
CONTROL_TYPES = (
    *("InfoOnlyAnalog", "Meter", "Daytimer", "IRCDaytimer", "TextState", "LightControllerV2"),
    *("IRoomController", "Switch", "EnergyManager2"),
)
_UUID_ACTIONS = (
    *("0f869a64-0001-0000-ffffd4c75dbaf53c", "0f869a64-0002-0000-ffffd4c75dbaf53c"),
    *("0f869a64-0003-0000-ffffd4c75dbaf53c", "0f869a64-0002-0000-ffffd4c75dbaf53c/AI1"),
    "13f2e1a0-0364-2f16-ffff403fb0c34b9e/masterValue",
)
_STATE_NAMES = (
    *("value", "actual", "total", "totalNeg", "storage", "entriesAndDefaultValue", "text"),
    *("temperatures", "active", "position", "tempActual", "totalDay", "Gpwr"),
)
_DETAILS = (
    None,
    {"format": "%.1f°"},
    {"format": "%.0f%%"},
    {"format": "Power: %.3f kW"},
    {"format": "%d"},
    {"format": "no conversion"},
    {"actualFormat": "%.3fkW", "totalFormat": "%.1fkWh", "format": "%.2f"},
    {"actualFormat": "%.1f l/h", "totalFormat": "%.3f m³"},
    {"format": "%.0f hPa"},
    "not an object",
)
_LAST_MODIFIED = ("2025-01-02 03:04:05", "2017-11-22 18:41:01", "not a time", "")

_pool_uuids = st.sampled_from(STATE_UUID_POOL).map(
    lambda uuid: uuid.upper() if uuid == STATE_UUID_POOL[0] else uuid
)
# What a state entry holds: a UUID, a list of UUIDs (the old IRoomController's temperatures),
# or something that is no UUID (skipped by the loader).
_state_refs = st.one_of(
    _pool_uuids,
    _pool_uuids,
    st.lists(_pool_uuids, min_size=1, max_size=3),
    st.sampled_from(["", 5, None, "not-a-uuid"]),
)
# entriesAndDefaultValue twice: a daytimer's entries need that name.
_state_names = st.sampled_from((*_STATE_NAMES, "entriesAndDefaultValue"))
_state_dicts = st.dictionaries(_state_names, _state_refs, max_size=4)
_optional = st.none  # readability: "absent" in the document


def _control_documents(depth: int) -> st.SearchStrategy[dict[str, object]]:
    subs = (
        st.lists(_control_documents(depth - 1), max_size=2).map(
            lambda controls: {f"s{i}": control for i, control in enumerate(controls)} or None
        )
        if depth
        else _optional()
    )
    return st.fixed_dictionaries(
        {
            "name": st.sampled_from(CONTROL_NAMES),
            "uuidAction": st.sampled_from(_UUID_ACTIONS),
            "type": st.sampled_from(CONTROL_TYPES),
            "room": st.one_of(_optional(), st.sampled_from((*_ROOM_UUIDS, _UNKNOWN_PLACE))),
            "cat": st.one_of(_optional(), st.sampled_from((*_CAT_UUIDS, _UNKNOWN_PLACE))),
            "states": _state_dicts,
            "details": st.sampled_from(_DETAILS),
            "subControls": subs,
        }
    ).map(lambda control: {key: value for key, value in control.items() if value is not None})


_CONTROL_DOCUMENTS = _control_documents(depth=1)
_places = st.lists(st.sampled_from(PLACE_NAMES), min_size=2, max_size=2)


def _place_documents(
    uuids: tuple[str, ...], names: list[str], kind: object
) -> dict[str, dict[str, object]]:
    return {u: {"uuid": u, "name": n, "type": kind} for u, n in zip(uuids, names, strict=True)}


@st.composite
def structure_documents(draw: st.DrawFn) -> dict[str, object]:
    """A small ``LoxAPP3.json`` document with the awkward parts of real files (see above)."""
    rooms, cats = draw(_places), draw(_places)
    controls = draw(st.lists(_CONTROL_DOCUMENTS, min_size=1, max_size=4))
    document: dict[str, object] = {
        "lastModified": draw(st.sampled_from(_LAST_MODIFIED)),
        "rooms": _place_documents(_ROOM_UUIDS, rooms, 1),
        "cats": _place_documents(_CAT_UUIDS, cats, "lights"),
        "globalStates": draw(
            st.dictionaries(
                st.sampled_from(["operatingMode", "sunrise", "sunset", "notifications"]),
                st.one_of(_pool_uuids, st.just("")),
                max_size=3,
            )
        ),
        # JSON keys are unique, uuidActions need not be: the loader reads only the values.
        "controls": {f"c{i}": control for i, control in enumerate(controls)},
    }
    if draw(st.booleans()):
        document["msInfo"] = {
            "serialNr": draw(st.sampled_from(["504F94000000", "", 'q"uote'])),
            "msName": draw(st.sampled_from(CONTROL_NAMES)),
            "projectName": draw(st.sampled_from(PLACE_NAMES)),
            "miniserverType": draw(st.sampled_from([0, 1, 2, 3, 4, 9, "2", None])),
            "tempUnit": draw(st.sampled_from([0, 1, None])),  # °C, °F
        }
    if draw(st.booleans()):
        document["weatherServer"] = {
            "states": {"actual": draw(_pool_uuids), "forecast": draw(_pool_uuids)}
        }
    return document


#: Doubles as a Miniserver may send them, weighted to what the number format must get right:
#: both zeros, NaN, the infinities, the switch to Go's exponent form at 1e6, repr's at 1e16,
#: the largest and smallest doubles.
_EXPOSITION_EDGES = [
    *(0.0, -0.0, 1.0, -1.0, 22.5, float("nan"), float("inf"), float("-inf")),
    *(999999.9999999999, 1e6, 1234567.0, -1234567.0, 10000000.0, 123456789.125),
    *(1e10, 1750000000.25, 9999999999999998.0, 1e16, 1.5e300, -1.7976931348623157e308),
    *(5e-324, 1e-5, 0.0001, 2.0**53, 1e22),
]
exposition_doubles = st.one_of(
    st.sampled_from(_EXPOSITION_EDGES),
    st.floats(),
    st.integers(min_value=-(10**6), max_value=10**10).map(float),
)
# Texts around the 200-character cut (by code point), with what label values must escape.
_text_alphabet = st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs", "Cc"))
exposition_texts = st.one_of(
    st.text(_text_alphabet, max_size=12),
    st.tuples(st.text(_text_alphabet, min_size=1, max_size=5), st.integers(35, 70)).map(
        lambda repeated: repeated[0] * repeated[1]
    ),
)
exposition_weather_entries = st.builds(
    WeatherEntry,
    *(int32s, int32s, int32s, int32s, int32s),
    *(exposition_doubles,) * 6,
)
