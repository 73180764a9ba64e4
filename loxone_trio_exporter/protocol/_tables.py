"""Decoders and encoders for the four event tables (value, text, daytimer, weather).

All integers and doubles are little-endian; a table is records concatenated without separators
([DOC] "Event-Tables"). Decoders are strict about structure (a table that is not whole records is a
``RemoteProtocolError`` naming the offset) and lenient where real Miniservers vary (text padding
bytes are garbage more often than not). UUIDs stay raw 16-byte ``bytes``: the hot path looks them
up in the state index without formatting them.

Value states are returned as plain ``(uuid, value)`` tuples rather than attrs objects: the value
table is the hot path (budget: 500k events/s decoded and applied) and tuple creation in C is an
order of magnitude cheaper than an attrs ``__init__`` per record.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import attrs

from ..errors import RemoteProtocolError
from ._uuid import NULL_UUID, RAW_UUID_SIZE

# --- value states: uuid(16) + double(8) ------------------------------------------------------

_VALUE_RECORD = struct.Struct("<16sd")
VALUE_RECORD_SIZE = _VALUE_RECORD.size  # 24

ValueState = tuple[bytes, float]


def decode_value_states(payload: bytes | memoryview) -> tuple[ValueState, ...]:
    """Decode a value-state table into ``(raw_uuid, value)`` pairs."""
    size = len(payload)
    if size % VALUE_RECORD_SIZE:
        whole = size - size % VALUE_RECORD_SIZE
        raise RemoteProtocolError(
            f"value table of {size} bytes is not a whole number of 24-byte records", offset=whole
        )
    return tuple(_VALUE_RECORD.iter_unpack(payload))


def encode_value_states(states: Iterable[ValueState]) -> bytes:
    """Encode ``(raw_uuid, value)`` pairs as a value-state table."""
    pack = _VALUE_RECORD.pack
    return b"".join(pack(_checked_uuid(uuid), value) for uuid, value in states)


# --- text states: uuid(16) + icon uuid(16) + uint32 length + UTF-8 text + padding to 4 ---------

_TEXT_FIXED = struct.Struct("<16s16sI")
TEXT_FIXED_SIZE = _TEXT_FIXED.size  # 36, itself a multiple of 4


@attrs.frozen
class TextState:
    """One text-state record. ``icon_uuid`` is used by the Status control, else the null UUID."""

    uuid: bytes
    text: str
    icon_uuid: bytes = NULL_UUID


def _padding_after(text_length: int) -> int:
    return -text_length % 4


def decode_text_states(payload: bytes | memoryview) -> tuple[TextState, ...]:
    """Decode a text-state table.

    Padding bytes are never inspected: captures show non-zero garbage there. Text is decoded as
    UTF-8 with replacement, because a Miniserver string in a legacy encoding must not cost us the
    whole session. The last record may lack its padding (nothing follows it to align).
    """
    data = memoryview(payload)
    return tuple(text_state_at(data, offset, length) for offset, length in text_records(data))


def text_records(data: memoryview) -> Iterator[tuple[int, int]]:
    """``(offset, text length)`` of every text-state record, checking that each one is whole."""
    size = len(data)
    offset = 0
    while offset < size:
        if size - offset < TEXT_FIXED_SIZE:
            raise RemoteProtocolError(
                f"truncated text-state record: {size - offset} bytes left, need 36", offset=offset
            )
        text_length = _TEXT_FIXED.unpack_from(data, offset)[2]
        text_start = offset + TEXT_FIXED_SIZE
        text_end = text_start + text_length
        if text_end > size:
            raise RemoteProtocolError(
                f"text-state record declares {text_length} bytes of text, "
                f"only {size - text_start} follow",
                offset=offset,
            )
        yield offset, text_length
        offset = min(text_end + _padding_after(text_length), size)


def text_state_at(data: memoryview, offset: int, text_length: int) -> TextState:
    """The text-state record at ``offset`` (found by ``text_records``)."""
    uuid, icon_uuid, _ = _TEXT_FIXED.unpack_from(data, offset)
    text_start = offset + TEXT_FIXED_SIZE
    text = str(data[text_start : text_start + text_length], "utf-8", "replace")
    return TextState(uuid=uuid, text=text, icon_uuid=icon_uuid)


def encode_text_states(states: Iterable[TextState], *, padding_byte: int = 0) -> bytes:
    """Encode text states; ``padding_byte`` lets tests imitate the garbage real Miniservers send."""
    parts: list[bytes] = []
    for state in states:
        text = state.text.encode("utf-8")
        uuid, icon_uuid = _checked_uuid(state.uuid), _checked_uuid(state.icon_uuid)
        parts.append(_TEXT_FIXED.pack(uuid, icon_uuid, len(text)))
        parts.append(text)
        parts.append(bytes([padding_byte]) * _padding_after(len(text)))
    return b"".join(parts)


# --- daytimer states: uuid(16) + double default(8) + int32 count, then 24-byte entries ----------

_DAYTIMER_FIXED = struct.Struct("<16sdi")
_DAYTIMER_ENTRY = struct.Struct("<iiiid")
DAYTIMER_FIXED_SIZE = _DAYTIMER_FIXED.size  # 28
DAYTIMER_ENTRY_SIZE = _DAYTIMER_ENTRY.size  # 24


@attrs.frozen
class DaytimerEntry:
    """One schedule entry; ``from_minute``/``to_minute`` count minutes since midnight."""

    mode: int
    from_minute: int
    to_minute: int
    need_activate: int
    value: float


@attrs.frozen
class DaytimerState:
    """A daytimer's schedule: its default value and every entry."""

    uuid: bytes
    default_value: float
    entries: Sequence[DaytimerEntry]  # a tuple, or read from the table as used (_packed)


def decode_daytimer_states(payload: bytes | memoryview) -> tuple[DaytimerState, ...]:
    """Decode a daytimer-state table."""
    return tuple(
        DaytimerState(
            uuid=uuid,
            default_value=default_value,
            entries=tuple(DaytimerEntry(*fields) for fields in entries),
        )
        for (uuid, default_value), entries in _decode_counted_records(
            payload, _DAYTIMER_FIXED, _DAYTIMER_ENTRY, "daytimer"
        )
    )


def encode_daytimer_states(states: Iterable[DaytimerState]) -> bytes:
    """Encode daytimer states."""
    parts: list[bytes] = []
    for state in states:
        parts.append(
            _DAYTIMER_FIXED.pack(_checked_uuid(state.uuid), state.default_value, len(state.entries))
        )
        parts.extend(
            _DAYTIMER_ENTRY.pack(e.mode, e.from_minute, e.to_minute, e.need_activate, e.value)
            for e in state.entries
        )
    return b"".join(parts)


# --- weather states: uuid(16) + uint32 lastUpdate + int32 count, then 68-byte entries -----------

_WEATHER_FIXED = struct.Struct("<16sIi")
# 5 x int32 then 6 x float64: the doubles sit at offsets 20, 28, ... (not 8-aligned), which the
# "<" format reads without alignment.
_WEATHER_ENTRY = struct.Struct("<5i6d")
WEATHER_FIXED_SIZE = _WEATHER_FIXED.size  # 24
WEATHER_ENTRY_SIZE = _WEATHER_ENTRY.size  # 68


@attrs.frozen
class WeatherEntry:
    """One weather entry (the current weather, or one forecast hour)."""

    timestamp: int
    weather_type: int
    wind_direction: int
    solar_radiation: int
    relative_humidity: int
    temperature: float
    perceived_temperature: float
    dew_point: float
    precipitation: float
    wind_speed: float
    barometric_pressure: float


@attrs.frozen
class WeatherState:
    """A weather state: ``last_update`` is seconds since 2009-01-01 UTC."""

    uuid: bytes
    last_update: int
    entries: Sequence[WeatherEntry]  # a tuple, or read from the table as used (_packed)


def decode_weather_states(payload: bytes | memoryview) -> tuple[WeatherState, ...]:
    """Decode a weather-state table."""
    return tuple(
        WeatherState(
            uuid=uuid,
            last_update=last_update,
            entries=tuple(WeatherEntry(*fields) for fields in entries),
        )
        for (uuid, last_update), entries in _decode_counted_records(
            payload, _WEATHER_FIXED, _WEATHER_ENTRY, "weather"
        )
    )


def encode_weather_states(states: Iterable[WeatherState]) -> bytes:
    """Encode weather states."""
    parts: list[bytes] = []
    for state in states:
        parts.append(
            _WEATHER_FIXED.pack(_checked_uuid(state.uuid), state.last_update, len(state.entries))
        )
        parts.extend(_WEATHER_ENTRY.pack(*attrs.astuple(entry)) for entry in state.entries)
    return b"".join(parts)


# --- shared by daytimer and weather: a fixed part ending in a count, then that many entries -----


def _decode_counted_records(
    payload: bytes | memoryview, fixed: struct.Struct, entry: struct.Struct, table: str
) -> Iterator[tuple[tuple[Any, ...], Iterator[tuple[Any, ...]]]]:
    """Yield ``(fixed fields without the count, entry tuples)`` per record, checking sizes."""
    for head, entries in counted_records(payload, fixed, entry, table):
        yield head, entry.iter_unpack(entries)


def counted_records(
    payload: bytes | memoryview, fixed: struct.Struct, entry: struct.Struct, table: str
) -> Iterator[tuple[tuple[Any, ...], memoryview]]:
    """Yield ``(fixed fields without the count, the entries' bytes)`` per record, checking
    every count against the bytes that follow it."""
    data = memoryview(payload)
    size = len(data)
    offset = 0
    while offset < size:
        _require(size - offset >= fixed.size, f"truncated {table} record", offset)
        *head, count = fixed.unpack_from(data, offset)
        entries_start = offset + fixed.size
        _check_count(count, entry.size, size - entries_start, table, offset)
        offset = entries_start + count * entry.size
        yield tuple(head), data[entries_start:offset]


# --- shared checks --------------------------------------------------------------------------------


def _require(condition: bool, message: str, offset: int) -> None:
    if not condition:
        raise RemoteProtocolError(message, offset=offset)


def _check_count(count: int, entry_size: int, available: int, table: str, offset: int) -> None:
    if count < 0:
        raise RemoteProtocolError(f"{table} record declares {count} entries", offset=offset)
    if count * entry_size > available:
        raise RemoteProtocolError(
            f"{table} record declares {count} entries ({count * entry_size} bytes), "
            f"only {available} bytes follow",
            offset=offset,
        )


def _checked_uuid(uuid: bytes) -> bytes:
    # struct's "16s" would silently pad or cut a wrong-sized key; an encoder must not do that.
    if len(uuid) != RAW_UUID_SIZE:
        raise ValueError(f"a raw UUID has 16 bytes, got {len(uuid)}")
    return uuid
