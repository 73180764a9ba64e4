"""Which series a structure layout gives one Miniserver, numbered, with their labels rendered.

Built once per (layout, ``[export]`` filters, Miniserver name) by ``build_plan``; the store
(``_store.py``) takes it over and the event path then only looks a raw UUID up. Identity rules
(design 3.3):

- ``uuid`` is the control's ``uuidAction``: names repeat within a room, UUIDs do not;
- a state UUID owned by several controls (or twice by one) feeds one series per owner;
- a list state gives ``state="name[0]"``, ``state="name[1]"``, ...;
- subcontrols carry a ``parent`` label (the parent's ``uuidAction``);
- a control whose name another control of its room had before it (in file order) carries
  ``duplicate="2"``, ``"3"``, ...: a legend of room and control then never shows two series
  alike (``uuid`` tells them apart too, but no one reads a UUID in a legend);
- two owners with the very same labels are one series (as a dict keyed by label set would
  hold them): numbers go to distinct label sets, in file order;
- a UUID that an exported control owns feeds that control's series only, even when it is also
  a global state; otherwise its global series;
- a state that ``exclude_states`` matches feeds no series (no value, text or daytimer series);
  its UUID stays known (not an unknown state);
- at most ``max_series`` control series (``loxone_control_value``, whose numbers
  ``loxone_control_text`` shares): states that would make more, in file order, feed none;
  ``series_limited`` counts the series left out.

Labels are kept rendered, as the bytes of the exposition (``name="value"`` pairs, escaped), in
two levels: the labels every series of a control starts with (``control_text``, one bytes object
per control) and the ``state`` pair (``state_text``, one object per distinct state label), so a
series costs two references instead of a label tuple and a line prefix of its own.
"""

from __future__ import annotations

import fnmatch
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import attrs

from ..exposition import LabelSet, escape_label_value
from ..structure import ControlRecord, StructureLayout
from ._typed import CONVERSIONS, FAMILIES, PLAIN, unit_code

#: ``encode`` errors for label values: a lone surrogate (a ``\ud800`` escape in a structure
#: file) becomes ``?`` instead of failing the scrape, as the renderer writes any label value.
_ENCODE_ERRORS = "replace"


#: An ``exclude_states`` entry: (control type, or ``None`` for every type; glob).
StateGlob = tuple[str | None, str]


@attrs.frozen
class ExportFilter:
    """What not to export (empty means everything), and whether values go to typed families."""

    exclude_rooms: frozenset[str] = frozenset()
    exclude_categories: frozenset[str] = frozenset()
    exclude_types: frozenset[str] = frozenset()
    exclude_names: tuple[str, ...] = ()  # shell globs on control names
    exclude_states: tuple[StateGlob, ...] = ()
    #: Control series per Miniserver; ``None``: no limit.
    max_series: int | None = None
    #: Values in the family of their unit (``_typed``); else all in ``loxone_control_value``.
    typed: bool = True

    def excludes(self, control: ControlRecord) -> bool:
        return (
            control.room in self.exclude_rooms
            or control.category in self.exclude_categories
            or control.type in self.exclude_types
            or any(fnmatch.fnmatchcase(control.name, glob) for glob in self.exclude_names)
        )

    def excludes_state(self, control_type: str, label: str) -> bool:
        """Whether ``exclude_states`` drops the state ``label`` (``name`` or ``name[i]``) of a
        control of ``control_type``: an entry matches the name or the whole label, as a glob
        or as it is (``temperatures[3]`` as a glob would be a character class)."""
        name = label.partition("[")[0]
        return any(
            (only is None or only == control_type)
            and (
                glob in (name, label)
                or fnmatch.fnmatchcase(name, glob)
                or fnmatch.fnmatchcase(label, glob)
            )
            for only, glob in self.exclude_states
        )


#: ``shared_int``'s tables: ``_NON_NEGATIVE[n] is n``, ``_NEGATIVE[n] == ~n``.
_NON_NEGATIVE: list[int] = []
_NEGATIVE: list[int] = []


def shared_int(value: int) -> int:
    """``value`` as one int object for the whole process.

    The index of every Miniserver maps each raw UUID to a small int (``SeriesStore``); ints
    beyond 256 are objects of their own (32 bytes), one per UUID and Miniserver. Miniservers
    number their series from 0 alike, so they can share them: 100 Miniservers of 1k controls
    hold one set of codes instead of 100 (about 15 MB). The tables grow to the largest code
    any plan has used (a list slot, 8 bytes, per code) and are only touched while a plan is
    built or a series gets its first value, never per event.
    """
    table, slot = (_NON_NEGATIVE, value) if value >= 0 else (_NEGATIVE, ~value)
    if slot >= len(table):
        fresh = range(len(table), slot + 1)
        table.extend(fresh if value >= 0 else (~n for n in fresh))
    return table[slot]


def labels_text(labels: Iterable[tuple[str, str]]) -> bytes:
    """``name="value",...`` as the exposition writes it (values escaped)."""
    text = ",".join(f'{name}="{escape_label_value(value)}"' for name, value in labels)
    return text.encode("utf-8", _ENCODE_ERRORS)


def control_labels(miniserver: str, layout: StructureLayout, position: int) -> LabelSet:
    """The labels every series of the control at ``position`` starts with."""
    control = layout.controls[position]
    labels: LabelSet = (
        ("miniserver", miniserver),
        ("uuid", control.uuid_action),
        ("control", control.name),
        ("control_type", control.type),
        ("room", control.room),
        ("category", control.category),
    )
    duplicate = layout.duplicates[position]
    if duplicate:
        labels += (("duplicate", str(duplicate)),)
    parent_uuid = layout.parent_uuid(control)
    if parent_uuid is not None:
        labels += (("parent", parent_uuid),)
    return labels


class SeriesPlan:
    """The series of one layout under one filter, and what feeds them (see module doc).

    Series numbers: control value series ``0 .. len(series_control) - 1`` (the same numbers
    serve ``loxone_control_text``), global series ``0 .. len(global_text) - 1``, info series
    and daytimer series likewise.

    ``index`` maps every raw UUID of the layout to a code (see ``_store.SeriesStore``): ``~s``
    for a UUID that alone feeds control series ``s`` alone, ``~(controls + c)`` for every other
    UUID (entry ``c`` of the ``complex_*`` columns: its control series, else its global series;
    both empty for a state nobody exports).
    """

    def __init__(self, layout: StructureLayout, export_filter: ExportFilter, miniserver: str):
        self.layout = layout
        self.export_filter = export_filter
        self.miniserver = miniserver
        controls = layout.controls
        exported = _exported(controls, export_filter)
        self.controls_exported = sum(exported)
        shared: dict[bytes, bytes] = {}

        def one(text: bytes) -> bytes:
            return shared.setdefault(text, text)

        #: Per control of the layout: its rendered labels (``b""`` when not exported).
        keys = [
            control_labels(miniserver, layout, position) if keep else ()
            for position, keep in enumerate(exported)
        ]
        self.control_text: tuple[bytes, ...] = tuple(
            labels_text(key) if key else b"" for key in keys
        )
        self._build_info(keys, exported, one)
        #: Control series that ``max_series`` left out (distinct label sets).
        self.series_limited = 0
        self._build_values(keys, exported, one)
        self.global_text: tuple[bytes, ...] = tuple(
            labels_text((("miniserver", miniserver), ("state", name)))
            for name, _ in layout.global_states
        )
        self._build_index()

    def _build_info(
        self, keys: list[LabelSet], exported: list[bool], one: Callable[[bytes], bytes]
    ) -> None:
        series: dict[LabelSet, int] = {}
        self.info_control = array("i")
        suffixes: list[bytes] = []
        for position, (control, key, keep) in enumerate(
            zip(self.layout.controls, keys, exported, strict=True)
        ):
            if not keep:
                continue
            # The info series always has a parent label ("" on top-level controls).
            extra: LabelSet = (("unit", control.unit),)
            total_unit = self.layout.total_units.get(position)
            if total_unit:
                extra += (("total_unit", total_unit),)
            if control.parent < 0:
                extra = (("parent", ""), *extra)
            if (*key, *extra) in series:
                continue
            series[(*key, *extra)] = len(suffixes)
            self.info_control.append(position)
            suffixes.append(one(b"," + labels_text(extra)))
        self.info_suffix: tuple[bytes, ...] = tuple(suffixes)

    def _build_values(
        self, keys: list[LabelSet], exported: list[bool], one: Callable[[bytes], bytes]
    ) -> None:
        layout = self.layout
        series: dict[tuple[LabelSet, str], int] = {}
        self.series_control = array("i")
        #: Per control series: its unit code (``_typed.CONVERSIONS``), which names its family.
        self.series_unit = bytearray()
        typed = self.export_filter.typed
        state_text: list[bytes] = []
        daytimer_series: dict[LabelSet, int] = {}
        self.daytimer_control = array("i")
        #: raw UUID -> control series it feeds (owner order, each once).
        self.feeds: dict[bytes, list[int]] = {}
        #: raw UUID -> daytimer series it feeds.
        self.daytimer_feeds: dict[bytes, tuple[int, ...]] = {}
        daytimer_lists: dict[bytes, list[int]] = {}
        dropped = self._state_excluder()
        limit = self.export_filter.max_series
        limited: set[tuple[LabelSet, str]] = set()
        # Read once: each control read from the layout is a record made anew.
        control_type = [control.type for control in layout.controls]
        for index, (position, raw, label, unit) in enumerate(
            zip(
                layout.state_control,
                layout.state_uuid,
                layout.state_label,
                layout.state_units(),
                strict=True,
            )
        ):
            if not exported[position]:
                continue
            if dropped is not None and dropped(control_type[position], label):
                continue
            key = (keys[position], label)
            number = series.get(key)
            if number is None:
                if limit is not None and len(state_text) >= limit:
                    limited.add(key)
                    continue
                number = series[key] = shared_int(len(state_text))
                self.series_control.append(position)
                code = unit_code(control_type[position], label, unit) if typed else PLAIN
                self.series_unit.append(code)
                state_text.append(one(b"," + labels_text((("state", label),))))
            fed = self.feeds.setdefault(raw, [])
            if number not in fed:
                fed.append(number)
            if index in layout.daytimer_states:
                daytimer = daytimer_series.get(keys[position])
                if daytimer is None:
                    daytimer = daytimer_series[keys[position]] = len(self.daytimer_control)
                    self.daytimer_control.append(position)
                found = daytimer_lists.setdefault(raw, [])
                if daytimer not in found:
                    found.append(daytimer)
        self.series_limited = len(limited)
        self.state_text: tuple[bytes, ...] = tuple(state_text)
        self._tally_families()
        self.daytimer_text: tuple[bytes, ...] = tuple(
            self.control_text[control] for control in self.daytimer_control
        )
        self.daytimer_feeds = {raw: tuple(found) for raw, found in daytimer_lists.items()}

    def _state_excluder(self) -> Callable[[str, str], bool] | None:
        """``excludes_state`` of the filter, once per (control type, label); ``None`` when no
        state is excluded (no call per state then)."""
        export_filter = self.export_filter
        if not export_filter.exclude_states:
            return None
        seen: dict[tuple[str, str], bool] = {}

        def dropped(control_type: str, label: str) -> bool:
            answer = seen.get((control_type, label))
            if answer is None:
                answer = seen[(control_type, label)] = export_filter.excludes_state(
                    control_type, label
                )
            return answer

        return dropped

    def _tally_families(self) -> None:
        """How many control series each family (``_typed.FAMILIES``) has, and how they convert."""
        #: Control series per family (``_typed.FAMILIES``).
        self.family_series = [0] * len(FAMILIES)
        #: Per family: whether any of its series needs a conversion (``_typed.Conversion``).
        self.family_converts = [False] * len(FAMILIES)
        #: Per family: the unit code of all its series, or ``None`` if they mix several.
        self.family_unit: list[int | None] = [None] * len(FAMILIES)
        mixed: set[int] = set()
        for code, count in Counter(self.series_unit).items():
            conversion = CONVERSIONS[code]
            family = conversion.family
            if self.family_series[family]:
                mixed.add(family)
            self.family_series[family] += count
            self.family_unit[family] = code
            if not conversion.identity:
                self.family_converts[family] = True
        for family in mixed:
            self.family_unit[family] = None

    def _build_index(self) -> None:
        controls = len(self.series_control)
        feeders = [0] * controls  # how many UUIDs feed each control series
        for fed in self.feeds.values():
            for number in fed:
                feeders[number] += 1
        globals_of: dict[bytes, list[int]] = {}
        for number, (_, raw) in enumerate(self.layout.global_states):
            globals_of.setdefault(raw, []).append(number)
        self.index: dict[bytes, int] = {}
        self.complex_uuid: list[bytes] = []
        self.complex_control: list[tuple[int, ...]] = []
        self.complex_global: list[tuple[int, ...]] = []
        every = (
            *self.layout.state_uuid,
            *(raw for _, raw in self.layout.global_states),
            *self.layout.weather_states,
        )
        for raw in every:
            if raw in self.index:
                continue
            fed = self.feeds.get(raw, [])
            if len(fed) == 1 and feeders[fed[0]] == 1:
                self.index[raw] = shared_int(~fed[0])
                continue
            self.index[raw] = shared_int(~(controls + len(self.complex_uuid)))
            self.complex_uuid.append(raw)
            self.complex_control.append(tuple(fed))
            # Today's rule (module doc): globals only for a UUID no exported control owns.
            self.complex_global.append(() if fed else tuple(globals_of.get(raw, ())))
        del self.feeds  # only needed while building


def _exported(controls: Sequence[ControlRecord], export_filter: ExportFilter) -> list[bool]:
    """Per control: exported? An excluded control takes its subcontrols along."""
    exported: list[bool] = []
    for control in controls:
        parent_kept = control.parent < 0 or exported[control.parent]
        exported.append(parent_kept and not export_filter.excludes(control))
    return exported
