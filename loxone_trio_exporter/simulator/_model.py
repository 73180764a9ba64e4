"""The simulated Miniserver's data: its structure file and the current value of every state.

Pure and synchronous: no trio, no clock. Randomness comes from one ``random.Random(seed)`` per
simulator, so a seed and a sequence of calls always give the same bytes. Each state UUID has
exactly one current value, however many controls own it.
"""

from __future__ import annotations

import datetime
import json
import random
import re
import struct
from typing import TypedDict

from ..protocol import (
    LOXONE_EPOCH_UNIX,
    MessageIdentifier,
    TextState,
    encode_daytimer_states,
    encode_text_states,
    encode_value_states,
    encode_weather_states,
    uuid_from_str,
    uuid_to_str,
)
from ..structure import StateIndex, Structure, build_state_index, structure_from_dict
from ._generate import STRUCTURE_TIME_FORMAT, JsonObject, UuidFactory, generate_structure
from ._generate import new_control as generate_new_control
from ._state_rules import STATUS_TEXTS, Motion
from ._state_tables import StateTables, build_state_tables

#: One message for the session to send: its header identifier and its binary payload.
Message = tuple[MessageIdentifier, bytes]

_VALUE_RECORD = struct.Struct("<16sd")
# A Miniserver sends text changes far less often than values: one per this many events or so.
_TEXT_GAP_EVENTS = (100, 300)
_FALLBACK_TIME = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
_RENAMED_SUFFIX = re.compile(r" \(renamed \d+\)$")

# Plain ints for the hot loop: an enum attribute would cost a lookup per event.
_FLIP, _WALK, _GROW = int(Motion.FLIP), int(Motion.WALK), int(Motion.GROW)


class ValuesSnapshot(TypedDict):
    """``GET /sim/values``: uuid (``8-4-4-16``) -> current value, for numeric and text states."""

    values: dict[str, float]
    texts: dict[str, str]


class SimulatedMiniserver:
    """The structure file and the changing state values of one simulated Miniserver.

    Mutable and not thread-safe: one task owns it at a time. Build it with ``from_document`` or
    ``generate``.
    """

    def __init__(self, document: JsonObject, *, seed: int) -> None:
        """Take ownership of ``document``: ``change_structure`` changes it in place."""
        self._rng = random.Random(seed)  # noqa: S311 - simulation data, not secrets
        self._document = document
        self._structure_text: str | None = None
        self._uuid_strings: dict[bytes, str] | None = None
        self._uuid_factory: UuidFactory | None = None
        self._structure_changes = 0
        start = _parse_time(document.get("lastModified")) or _FALLBACK_TIME
        self._clock = int(start.timestamp()) - LOXONE_EPOCH_UNIX  # Loxone time of miniserverTime
        self._events_until_text_change = self._rng.randint(*_TEXT_GAP_EVENTS)
        self._tables = StateTables()
        self._load()

    @classmethod
    def from_document(cls, document: JsonObject, *, seed: int) -> SimulatedMiniserver:
        """Simulate the Miniserver a ``LoxAPP3.json`` document describes (the dict is copied)."""
        return cls(json.loads(json.dumps(document)), seed=seed)

    @classmethod
    def generate(cls, controls: int, *, seed: int) -> SimulatedMiniserver:
        """Simulate a generated Miniserver (see ``generate_structure``)."""
        return cls(generate_structure(controls, seed=seed), seed=seed)

    # --- the structure ---------------------------------------------------------------------------

    @property
    def document(self) -> JsonObject:
        """The current ``LoxAPP3.json``. Read it; change it only through ``change_structure``."""
        return self._document

    @property
    def structure(self) -> Structure:
        """The document as the exporter's structure model sees it."""
        return self._structure

    @property
    def state_index(self) -> StateIndex:
        """Raw state UUID -> owners, for the current document."""
        return self._index

    @property
    def last_modified(self) -> str:
        """``lastModified``: what ``jdev/sps/LoxAPPversion3`` answers."""
        value = self._document.get("lastModified")
        return value if isinstance(value, str) else ""

    @property
    def serial(self) -> str:
        return self._structure.ms_info.serial_nr

    @property
    def name(self) -> str:
        return self._structure.ms_info.ms_name

    def structure_text(self) -> str:
        """The document as JSON text, serialised once per structure version."""
        if self._structure_text is None:
            self._structure_text = json.dumps(self._document, ensure_ascii=False)
        return self._structure_text

    # --- the state tables ------------------------------------------------------------------------

    def full_tables(self) -> list[Message]:
        """Value, text, daytimer and weather tables with every current state, in that order.

        This is what a Miniserver sends after ``enablebinstatusupdate``. A table with no states
        (no daytimers, no weather server) is an empty payload.
        """
        tables = self._tables
        values = b"".join(map(_VALUE_RECORD.pack, tables.value_uuids, tables.values))
        texts = encode_text_states(TextState(uuid, text) for uuid, text in tables.texts.items())
        return [
            (MessageIdentifier.VALUE_STATES, values),
            (MessageIdentifier.TEXT_STATES, texts),
            (MessageIdentifier.DAYTIMER_STATES, encode_daytimer_states(tables.daytimers.values())),
            (MessageIdentifier.WEATHER_STATES, encode_weather_states(tables.weather.values())),
        ]

    def step(self, events: int) -> list[Message]:
        """Advance by ``events`` numeric changes, returned as one batched value table.

        Each event changes one randomly picked state within its bounds (digital states flip,
        meter totals grow, configuration such as ``min``/``max`` stays); a state picked twice
        appears twice. About once per 200 events a clock or status text changes too; those come
        as a text table after the value table. ``[]`` when nothing changed.
        """
        if events < 0:
            raise ValueError(f"events must not be negative, got {events}")
        messages: list[Message] = []
        if events and self._tables.movers:
            messages.append((MessageIdentifier.VALUE_STATES, self._walk(events)))
        texts = self._text_changes(events)
        if texts:
            messages.append((MessageIdentifier.TEXT_STATES, encode_text_states(texts)))
        return messages

    def values_snapshot(self) -> ValuesSnapshot:
        """Every numeric and text state's current value, keyed by UUID string."""
        tables = self._tables
        if self._uuid_strings is None:  # formatted on first use: most runs never ask
            self._uuid_strings = {raw: uuid_to_str(raw) for raw in self._index}
        strings = self._uuid_strings
        values = zip(tables.value_uuids, tables.values, strict=True)
        return {
            "values": {strings[uuid]: value for uuid, value in values},
            "texts": {strings[uuid]: text for uuid, text in tables.texts.items()},
        }

    def bounds(self, uuid: str) -> tuple[float, float]:
        """The range ``step`` keeps a numeric state in (meter totals: up to infinity)."""
        _, low, high, _ = self._tables.specs[self._tables.positions[uuid_from_str(uuid)]]
        return low, high

    def set_value(self, uuid: str, value: float | str) -> Message:
        """Set a numeric state (to a number) or a text state (to a string).

        Returns the one-event table to send to clients. ``KeyError`` for a UUID that is neither a
        numeric nor a text state, ``TypeError`` for the wrong kind of value.
        """
        raw = uuid_from_str(uuid)
        tables = self._tables
        position = tables.positions.get(raw)
        if position is not None:
            if isinstance(value, str):
                raise TypeError(f"state {uuid} is numeric, got a string")
            tables.values[position] = float(value)
            return MessageIdentifier.VALUE_STATES, encode_value_states([(raw, float(value))])
        if raw not in tables.texts:
            raise KeyError(uuid)
        if not isinstance(value, str):
            raise TypeError(f"state {uuid} is a text state, got {type(value).__name__}")
        tables.texts[raw] = value
        return MessageIdentifier.TEXT_STATES, encode_text_states([TextState(raw, value)])

    # --- structure changes -----------------------------------------------------------------------

    def change_structure(self, now_text: str) -> None:
        """Do what a config upload does: a new ``lastModified``, one control removed, one
        renamed, one added. States of the removed control vanish unless another control owns
        them too.

        ``now_text`` (``YYYY-MM-DD HH:MM:SS``) becomes ``lastModified``; when it equals the old
        value a second is added, so that clients comparing versions see the change.
        """
        new_time = _parse_time(now_text)
        if new_time is None:
            raise ValueError(f"not a structure time (YYYY-MM-DD HH:MM:SS): {now_text!r}")
        if now_text == self.last_modified:
            new_time += datetime.timedelta(seconds=1)
        self._structure_changes += 1
        self._document["lastModified"] = new_time.strftime(STRUCTURE_TIME_FORMAT)
        controls = self._document.setdefault("controls", {})
        self._remove_and_rename(controls)
        added = self._new_control()
        controls[added["uuidAction"]] = added
        self._load()

    def _remove_and_rename(self, controls: JsonObject) -> None:
        keys = list(controls)
        if len(keys) >= 2:  # keep one to rename
            del controls[keys.pop(self._rng.randrange(len(keys)))]
        if keys:
            renamed = controls[self._rng.choice(keys)]
            base = _RENAMED_SUFFIX.sub("", str(renamed.get("name", "")))
            renamed["name"] = f"{base} (renamed {self._structure_changes})"

    def _new_control(self) -> JsonObject:
        if self._uuid_factory is None:
            self._uuid_factory = UuidFactory(self._rng)
        rooms, cats = list(self._structure.rooms), list(self._structure.categories)
        room = self._rng.choice(rooms) if rooms else None
        cat = self._rng.choice(cats) if cats else None
        while True:
            control = generate_new_control(self._rng, self._uuid_factory, room, cat)
            # Only a UUID from another generator could collide, but never hand out a taken one.
            if uuid_from_str(control["uuidAction"]) not in self._index:
                return control

    def _load(self) -> None:
        """(Re)build structure, index and tables; surviving state UUIDs keep their values."""
        self._structure = structure_from_dict(self._document)
        self._index = build_state_index(self._structure)
        self._structure_text = None
        self._uuid_strings = None
        self._tables = build_state_tables(
            self._index, self._tables, self._rng, self._clock, _miniserver_time(self._clock)
        )

    # --- the simulation --------------------------------------------------------------------------

    def _walk(self, events: int) -> bytes:
        """``events`` random changes as one value table: the benchmark's hot path, locals only."""
        random_ = self._rng.random
        tables = self._tables
        movers, count = tables.movers, len(tables.movers)
        values, specs = tables.values, tables.specs
        picks = [movers[int(random_() * count)] for _ in range(events)]
        changed: list[float] = []
        record = changed.append
        for position in picks:
            motion, low, high, step = specs[position]
            value = values[position]
            if motion == _FLIP:
                value = 0.0 if value else 1.0
            elif motion == _WALK:
                value += (random_() * 2.0 - 1.0) * step
                if value < low:
                    value = low
                elif value > high:
                    value = high
            elif motion == _GROW:
                value += random_() * step
            elif value >= high:  # LEVEL: a mode number moves by one, turning at the bounds
                value -= 1.0
            elif value <= low or random_() < 0.5:
                value += 1.0
            else:
                value -= 1.0
            values[position] = value
            record(value)
        uuids = map(tables.value_uuids.__getitem__, picks)
        return b"".join(map(_VALUE_RECORD.pack, uuids, changed))

    def _text_changes(self, events: int) -> list[TextState]:
        changing = self._tables.changing_texts
        if not changing:
            return []
        self._events_until_text_change -= events
        changed: dict[bytes, str] = {}
        while self._events_until_text_change <= 0:
            self._events_until_text_change += self._rng.randint(*_TEXT_GAP_EVENTS)
            uuid = self._rng.choice(changing)
            changed[uuid] = self._next_text(uuid)
            self._tables.texts[uuid] = changed[uuid]
        return [TextState(uuid, text) for uuid, text in changed.items()]

    def _next_text(self, uuid: bytes) -> str:
        if uuid in self._tables.clock_texts:
            self._clock += self._rng.randint(1, 60)
            return _miniserver_time(self._clock)
        current = self._tables.texts[uuid]
        return self._rng.choice([text for text in STATUS_TEXTS if text != current])


def _parse_time(text: object) -> datetime.datetime | None:
    """A structure time (``YYYY-MM-DD HH:MM:SS``), read as UTC; ``None`` if it is not one."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.datetime.strptime(text, STRUCTURE_TIME_FORMAT)
    except ValueError:
        return None
    return parsed.replace(tzinfo=datetime.UTC)


def _miniserver_time(loxone_seconds: int) -> str:
    """The ``globalStates.miniserverTime`` text: local time and its UTC offset (here UTC)."""
    moment = datetime.datetime.fromtimestamp(loxone_seconds + LOXONE_EPOCH_UNIX, datetime.UTC)
    return moment.strftime(STRUCTURE_TIME_FORMAT) + " +00:00:00"
