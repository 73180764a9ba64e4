"""State tables kept as the bytes they came in, decoded record by record as they are read.

A table decoded all at once costs five to eight times its size in Python objects: a 15 MiB value
table is 655,360 tuples, bytes and floats, about 90 MB. The exporter reads each record once and
keeps a few of them, so a table event holds its payload (the message itself, no copy) and its
records come into being one at a time while the state owner iterates. A table is checked whole
when it arrives, so a malformed one is refused there, by the session that can end it; iterating
a checked table cannot fail.

The sequences compare equal to tuples of the same records, so a test can still write
``ValueStatesReceived(((uuid, 1.0),))``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar, overload

from ._tables import (
    _DAYTIMER_ENTRY,
    _DAYTIMER_FIXED,
    _VALUE_RECORD,
    _WEATHER_ENTRY,
    _WEATHER_FIXED,
    DaytimerEntry,
    DaytimerState,
    TextState,
    ValueState,
    WeatherEntry,
    WeatherState,
    counted_records,
    decode_value_states,
    text_records,
    text_state_at,
)

_T = TypeVar("_T")
Payload = bytes | memoryview


class PackedRecords(Sequence[_T]):
    """Records read from ``payload`` as they are iterated; ``len`` without decoding."""

    __slots__ = ("_count", "_payload")

    def __init__(self, payload: Payload, count: int) -> None:
        self._payload = payload
        self._count = count

    @property
    def payload_size(self) -> int:
        """The bytes this table holds while it is alive."""
        return len(self._payload)

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[_T]:  # pragma: no cover - every table overrides it
        raise NotImplementedError

    @overload
    def __getitem__(self, index: int) -> _T: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[_T]: ...
    def __getitem__(self, index: int | slice) -> _T | Sequence[_T]:
        return tuple(self)[index]  # tests only: the exporter iterates

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedRecords | tuple | list):
            return len(self) == len(other) and tuple(self) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._count} records in {len(self._payload)} bytes>"


class PackedValueStates(PackedRecords[ValueState]):
    """``(raw_uuid, value)`` pairs; iterating is one C loop (``struct.iter_unpack``)."""

    __slots__ = ()

    def __iter__(self) -> Iterator[ValueState]:
        return _VALUE_RECORD.iter_unpack(self._payload)


class PackedTextStates(PackedRecords[TextState]):
    __slots__ = ()

    def __iter__(self) -> Iterator[TextState]:
        data = memoryview(self._payload)
        for offset, length in text_records(data):
            yield text_state_at(data, offset, length)


class PackedEntries(PackedRecords[_T]):
    """The entries of one daytimer or weather record, decoded as they are read."""

    __slots__ = ("_entry", "_make")

    def __init__(self, payload: Payload, entry: struct.Struct, make: Callable[..., _T]) -> None:
        super().__init__(payload, len(payload) // entry.size)
        self._entry = entry
        self._make = make

    def __iter__(self) -> Iterator[_T]:
        make = self._make
        for fields in self._entry.iter_unpack(self._payload):
            yield make(*fields)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, int) and 0 <= index < self._count:  # the first weather entry
            return self._make(*self._entry.unpack_from(self._payload, index * self._entry.size))
        return super().__getitem__(index)


class PackedDaytimerStates(PackedRecords[DaytimerState]):
    __slots__ = ()

    def __iter__(self) -> Iterator[DaytimerState]:
        for (uuid, default_value), entries in _daytimer_records(self._payload):
            yield DaytimerState(
                uuid=uuid,
                default_value=default_value,
                entries=PackedEntries(entries, _DAYTIMER_ENTRY, DaytimerEntry),
            )


class PackedWeatherStates(PackedRecords[WeatherState]):
    __slots__ = ()

    def __iter__(self) -> Iterator[WeatherState]:
        for (uuid, last_update), entries in _weather_records(self._payload):
            yield WeatherState(
                uuid=uuid,
                last_update=last_update,
                entries=PackedEntries(entries, _WEATHER_ENTRY, WeatherEntry),
            )


def _daytimer_records(payload: Payload) -> Iterator[tuple[tuple[Any, ...], memoryview]]:
    return counted_records(payload, _DAYTIMER_FIXED, _DAYTIMER_ENTRY, "daytimer")


def _weather_records(payload: Payload) -> Iterator[tuple[tuple[Any, ...], memoryview]]:
    return counted_records(payload, _WEATHER_FIXED, _WEATHER_ENTRY, "weather")


# --- checked whole on arrival ---------------------------------------------------------------------


def packed_value_states(payload: Payload) -> PackedValueStates:
    """A value table: a whole number of 24-byte records, else the decoder's error."""
    if len(payload) % _VALUE_RECORD.size:
        decode_value_states(payload)  # raises, naming the offset
    return PackedValueStates(payload, len(payload) // _VALUE_RECORD.size)


def packed_text_states(payload: Payload) -> PackedTextStates:
    """A text table whose every record length fits (walked once, no text decoded)."""
    return PackedTextStates(payload, _count(text_records(memoryview(payload))))


def packed_daytimer_states(payload: Payload) -> PackedDaytimerStates:
    return PackedDaytimerStates(payload, _count(_daytimer_records(payload)))


def packed_weather_states(payload: Payload) -> PackedWeatherStates:
    return PackedWeatherStates(payload, _count(_weather_records(payload)))


def _count(records: Iterator[object]) -> int:
    return sum(1 for _ in records)
