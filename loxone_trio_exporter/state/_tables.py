"""The four state tables a Miniserver sends, named once.

``TableKind.value`` is the ``table`` label of ``loxone_exporter_events_total``; the enum's order
is the order those series are written in.
"""

from __future__ import annotations

import enum

from ..protocol import (
    DaytimerStatesReceived,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
)

TableEvent = (
    ValueStatesReceived | TextStatesReceived | DaytimerStatesReceived | WeatherStatesReceived
)


class TableKind(enum.Enum):
    VALUE = "value"
    TEXT = "text"
    DAYTIMER = "daytimer"
    WEATHER = "weather"


#: The event class of each table -> its kind.
TABLE_KINDS: dict[type[TableEvent], TableKind] = {
    ValueStatesReceived: TableKind.VALUE,
    TextStatesReceived: TableKind.TEXT,
    DaytimerStatesReceived: TableKind.DAYTIMER,
    WeatherStatesReceived: TableKind.WEATHER,
}
