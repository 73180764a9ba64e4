"""The current value of every state of a structure, table by table, and how to build it.

Numeric states are kept in parallel lists (raw UUIDs, values, motion specs), because the value
walk of ``SimulatedMiniserver.step`` is the benchmark's event source and indexes them tens of
thousands of times per second. First values come from ``_state_rules``; daytimer schedules and
weather are generated here once per state UUID and then stay as they are: they are part of the
initial dump after ``enablebinstatusupdate``, and an exporter only counts and labels them.
"""

from __future__ import annotations

import math
import random

import attrs

from ..protocol import DaytimerEntry, DaytimerState, WeatherEntry, WeatherState
from ..structure import StateIndex
from ._state_rules import (
    Motion,
    NumericProfile,
    Table,
    initial_text,
    is_changing_text,
    is_clock_text,
    numeric_profile,
    table_of,
)

#: (motion, low, high, step) of one numeric state; a tuple, unpacked in the hot loop.
MotionSpec = tuple[int, float, float, float]

_WORKDAY_MODES = range(3, 8)  # operating modes 3..7 = Monday..Friday in the usual table
_FORECAST_HOURS = 96  # weatherServer "forecast" covers the next 96 hours ([DOC-SF])
_WEATHER_TYPES = (1, 2, 3, 5, 11)  # clear, fair, partly cloudy, overcast, rain
_SECONDS_PER_HOUR = 3600


@attrs.define
class StateTables:
    """One current value per state UUID, however many controls own it."""

    value_uuids: list[bytes] = attrs.Factory(list)
    values: list[float] = attrs.Factory(list)
    specs: list[MotionSpec] = attrs.Factory(list)
    #: raw UUID -> position in ``value_uuids``, ``values`` and ``specs``.
    positions: dict[bytes, int] = attrs.Factory(dict)
    #: Positions of the numeric states that change (not configuration such as min/max/step).
    movers: list[int] = attrs.Factory(list)
    texts: dict[bytes, str] = attrs.Factory(dict)
    #: Text states ``step`` changes now and then: status texts and the Miniserver clock.
    changing_texts: list[bytes] = attrs.Factory(list)
    clock_texts: set[bytes] = attrs.Factory(set)
    daytimers: dict[bytes, DaytimerState] = attrs.Factory(dict)
    weather: dict[bytes, WeatherState] = attrs.Factory(dict)


def build_state_tables(
    index: StateIndex, previous: StateTables, rng: random.Random, now: int, now_text: str
) -> StateTables:
    """Tables for every state of ``index``; UUIDs already in ``previous`` keep their values.

    ``now`` (seconds since 2009) and ``now_text`` (its ``miniserverTime`` form) date new weather
    and clock states.
    """
    tables = StateTables()
    previous_values = dict(zip(previous.value_uuids, previous.values, strict=True))
    for raw in index:
        owners = index.owners(raw)
        table = table_of(owners)
        if table is Table.VALUE:
            profile = numeric_profile(owners)
            value = previous_values.get(raw)
            _add_numeric(
                tables, raw, profile, _initial_value(profile, rng) if value is None else value
            )
        elif table is Table.TEXT:
            text = previous.texts.get(raw)
            tables.texts[raw] = text if text is not None else initial_text(owners, rng, now_text)
            if is_changing_text(owners):
                tables.changing_texts.append(raw)
            if is_clock_text(owners):
                tables.clock_texts.add(raw)
        elif table is Table.DAYTIMER:
            tables.daytimers[raw] = previous.daytimers.get(raw) or _daytimer_state(raw, rng)
        else:
            tables.weather[raw] = previous.weather.get(raw) or _weather_state(
                raw, owners[0].state_name, now, rng
            )
    return tables


def _add_numeric(tables: StateTables, raw: bytes, profile: NumericProfile, value: float) -> None:
    position = len(tables.value_uuids)
    tables.positions[raw] = position
    tables.value_uuids.append(raw)
    tables.values.append(value)
    tables.specs.append((int(profile.motion), profile.low, profile.high, profile.step))
    if profile.motion is not Motion.CONSTANT:
        tables.movers.append(position)


def _initial_value(profile: NumericProfile, rng: random.Random) -> float:
    motion = profile.motion
    if motion is Motion.CONSTANT:
        return profile.typical
    if motion is Motion.FLIP:
        return 1.0 if rng.random() < profile.typical else 0.0
    if motion is Motion.GROW:
        return round(profile.typical * (0.5 + rng.random()), 3)
    if motion is Motion.LEVEL:
        return float(rng.randint(int(profile.low), int(profile.high)))
    spread = (rng.random() * 2.0 - 1.0) * 10.0 * profile.step
    return round(max(profile.low, min(profile.high, profile.typical + spread)), 2)


def _daytimer_state(uuid: bytes, rng: random.Random) -> DaytimerState:
    """A workday schedule: on from a morning hour to an evening hour, Monday to Friday."""
    start_minute = rng.randint(5, 8) * 60
    end_minute = rng.randint(17, 22) * 60
    entries = tuple(
        DaytimerEntry(
            mode=mode, from_minute=start_minute, to_minute=end_minute, need_activate=0, value=1.0
        )
        for mode in _WORKDAY_MODES
    )
    return DaytimerState(uuid=uuid, default_value=0.0, entries=entries)


def _weather_state(uuid: bytes, state_name: str, now: int, rng: random.Random) -> WeatherState:
    """The current weather (``actual``) or an hourly forecast (any other weather state)."""
    hour = now - now % _SECONDS_PER_HOUR
    hours = 1 if state_name == "actual" else _FORECAST_HOURS
    base_temperature = rng.uniform(-5.0, 25.0)
    entries = tuple(
        _weather_entry(hour + offset * _SECONDS_PER_HOUR, base_temperature, rng)
        for offset in range(hours)
    )
    return WeatherState(uuid=uuid, last_update=now, entries=entries)


def _weather_entry(timestamp: int, base_temperature: float, rng: random.Random) -> WeatherEntry:
    hour_of_day = timestamp // _SECONDS_PER_HOUR % 24
    # Warmest in the afternoon, coldest before dawn; the sun shines between 6 and 18 h.
    temperature = round(
        base_temperature + 5.0 * math.sin((hour_of_day - 9) / 12 * math.pi) + rng.uniform(-1, 1), 1
    )
    sunlight = max(0.0, math.sin((hour_of_day - 6) / 12 * math.pi))
    humidity = rng.randint(40, 95)
    wind_speed = round(rng.uniform(0.0, 30.0), 1)
    return WeatherEntry(
        timestamp=timestamp,
        weather_type=rng.choice(_WEATHER_TYPES),
        wind_direction=rng.randrange(360),
        solar_radiation=int(800 * sunlight),
        relative_humidity=humidity,
        temperature=temperature,
        perceived_temperature=round(temperature - wind_speed / 10.0, 1),
        dew_point=round(temperature - (100 - humidity) / 5.0, 1),
        precipitation=round(max(0.0, rng.uniform(-2.0, 2.0)), 1),
        wind_speed=wind_speed,
        barometric_pressure=round(rng.uniform(995.0, 1035.0), 1),
    )
