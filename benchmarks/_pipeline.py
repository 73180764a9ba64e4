"""The exporter's data path in this process: simulated structures -> state owner -> web source.

The same objects the running exporter uses (``StateOwner``, ``ExporterWebSource``, the protocol's
``MessageReader``), fed with what the simulator's Miniservers send, without sockets: the
in-process scenarios (render, decode + apply) measure exactly the code a scrape or a state table
runs through, and nothing else.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator

from loxone_trio_exporter.config import ExportConfig
from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    MessageReader,
    encode_value_states,
    frame_binary_message,
    uuid_from_str,
)
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    StatusChanged,
    StructureReady,
    TablesReceived,
)
from loxone_trio_exporter.runtime._owner import BuildInfo, StateOwner
from loxone_trio_exporter.runtime._web_source import ExporterWebSource
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.state import TABLE_KINDS
from loxone_trio_exporter.structure import build_layout

from ._processes import controls_for

#: One simulated Miniserver per this many value series: a real structure file of 10k value
#: series is 1.8 MB; far larger ones exceed the WebSocket message limit (16 MiB) and no real
#: Miniserver has them, so larger installations are several Miniservers (as in the scale case).
SERIES_PER_MINISERVER = 10_000
#: The events a connection hands to the state owner (the four state tables).
TABLE_EVENTS = tuple(TABLE_KINDS)


def miniserver_split(value_series: int) -> tuple[int, int]:
    """``(Miniservers, controls each)`` that give about ``value_series`` value series."""
    count = max(1, math.ceil(value_series / SERIES_PER_MINISERVER))
    return count, controls_for(value_series // count)


def random_value(rng: random.Random) -> float:
    """What Miniservers send: many 0/1 states, one-decimal readings, some arbitrary floats."""
    kind = rng.random()
    if kind < 0.3:
        return float(rng.randint(0, 1))
    if kind < 0.8:
        return round(rng.uniform(-20.0, 40.0), 1)
    return rng.uniform(0.0, 100_000.0)


class Pipeline:
    """Simulated Miniservers applied to a ``StateOwner``, read through an ``ExporterWebSource``."""

    def __init__(self, value_series: int, *, seed: int = 1) -> None:
        self.rng = random.Random(seed)  # noqa: S311 - benchmark data, not secrets
        count, controls = miniserver_split(value_series)
        self.names = [f"ms{index + 1}" for index in range(count)]
        self.owner = StateOwner(self.names, ExportConfig(), build_info=BuildInfo("benchmark"))
        self.models = [SimulatedMiniserver.generate(controls, seed=seed + i) for i in range(count)]
        self._readers = {name: MessageReader() for name in self.names}
        #: Raw UUIDs of every numeric state, per Miniserver (what a value table can carry).
        self.numeric_states: list[list[bytes]] = []
        #: The value last sent for each numeric state, per Miniserver.
        self.current: list[dict[bytes, float]] = []
        for name, model in zip(self.names, self.models, strict=True):
            self.owner.apply(
                StructureReady(name, build_layout(model.structure), model.last_modified), 0.0
            )
            self.owner.apply(StatusChanged(name, ConnectionState.STREAMING), 0.0)
            for identifier, payload in model.full_tables():
                self.receive(name, identifier, payload)
            values = model.values_snapshot()["values"]
            self.current.append({uuid_from_str(uuid): value for uuid, value in values.items()})
            self.numeric_states.append(list(self.current[-1]))
        self.web = ExporterWebSource(self.owner)

    @property
    def value_series(self) -> int:
        """``loxone_control_value`` and ``loxone_global_value`` series the owner holds."""
        return sum(view.series for view in self.owner.views())

    def new_web_source(self) -> ExporterWebSource:
        """A web source with cold caches, as after a start."""
        self.web = ExporterWebSource(self.owner)
        return self.web

    def receive(self, name: str, identifier: MessageIdentifier, payload: bytes) -> None:
        """One table as the connection hands it on: decoded from its messages, then applied."""
        reader = self._readers[name]
        for message in frame_binary_message(identifier, payload):
            event = reader.receive(message)
            if isinstance(event, TABLE_EVENTS):
                self.owner.apply(TablesReceived(name, event), 0.0)

    def change(self, fraction: float) -> int:
        """Send a value table per Miniserver changing ``fraction`` of its numeric states (at
        least one; every one at 1.0) to new values; returns how many states changed."""
        changed = 0
        for name, states, current in zip(
            self.names, self.numeric_states, self.current, strict=True
        ):
            picked = (
                states if fraction >= 1.0 else self.rng.sample(states, _share(states, fraction))
            )
            table = []
            for uuid in picked:
                value = random_value(self.rng)
                if value == current[uuid]:
                    value += 1.0  # a change, always
                current[uuid] = value
                table.append((uuid, value))
            self.receive(name, MessageIdentifier.VALUE_STATES, encode_value_states(table))
            changed += len(table)
        return changed

    def value_tables(self, tables: int, records: int) -> Iterator[tuple[str, list[bytes]]]:
        """``tables`` value tables of ``records`` random changes each, framed as messages
        (header, payload), round robin over the Miniservers: the decode + apply workload."""
        for index in range(tables):
            which = index % len(self.names)
            states = self.numeric_states[which]
            table = [(self.rng.choice(states), random_value(self.rng)) for _ in range(records)]
            payload = encode_value_states(table)
            yield self.names[which], frame_binary_message(MessageIdentifier.VALUE_STATES, payload)

    def reader(self, name: str) -> MessageReader:
        return self._readers[name]


def _share(states: list[bytes], fraction: float) -> int:
    return max(1, min(len(states), round(len(states) * fraction)))
