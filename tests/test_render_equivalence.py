"""Today's ``/metrics`` body, frozen: the exporter must write what ``reference_exposition`` writes.

Issue 14 replaces the state core (owner, per-Miniserver state, families, values, series
catalogue, and how the renderer gets its series); its item 7 asks that the output stay byte for
byte what it is for the same state. These tests drive the exporter from the outside through one
adapter (``scrape_todays_exporter``, the only function to edit when the internals change) and
compare every scrape with an independent, plain reference (tests/reference_exposition.py).

What is compared: the whole text-format (0.0.4) body of ``/metrics``, every family, byte for
byte (the families and their order too), with two exceptions that depend on the process rather
than on the Miniservers: ``process_*`` (the adapter gives the web source a collector that yields
nothing) and the value of ``loxone_exporter_render_duration_seconds`` (masked; its HELP and TYPE
lines and whether it has a sample are compared). Wall-clock values (last event, config reload
time) come from a fixed clock, so they are compared exactly.

Inputs: Hypothesis-generated structure documents (shared state UUIDs, list states, subcontrols,
repeated names and uuidActions, names to escape, lone surrogates, missing rooms), the simulator's
generated structures with a structure change, and the real structure files of
``../shared/fixtures`` (with the captured showroom tables); then sequences of value, text,
daytimer and weather tables (NaN, infinities, both zeros, huge and tiny doubles, texts around the
200-character cut, UUIDs in and not in the structure, repeats), structure (re)loads, identity,
tokens, streaming, lost sessions, stale drops and ``[export]`` reloads, for one or two
Miniservers, scraped at several points so that the renderer's caches are exercised too.

Where the reference had to follow today's code rather than the design (comments "Today:" in
reference_exposition.py): a UUID that is both a global
state and a state of an exported control feeds only the control's series; a structure reloaded
with the same lastModified keeps the series of the old one (a UUID only the old one names is
still applied, and is no stranger).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs
import pytest
from conftest import require_shared_fixture
from hypothesis import given, settings
from hypothesis import strategies as st
from loxone_strategies import (
    CONTROL_NAMES,
    STATE_UUID_POOL,
    STRANGER_UUIDS,
    daytimer_entries,
    exposition_doubles,
    exposition_texts,
    exposition_weather_entries,
    structure_documents,
    uint32s,
)
from prometheus_client.registry import Collector
from reference_exposition import (
    BUILD_DATE,
    BUILD_PYTHON,
    BUILD_REVISION,
    BUILD_VERSION,
    RECONNECT_REASONS,
    RENDER_DURATION,
    SECONDS_PLACEHOLDER,
    WALL_CLOCK_UNIX,
    ApplyTable,
    DropStale,
    GrantToken,
    Identify,
    LoadStructure,
    LoseSession,
    Reload,
    Scrape,
    SetStreaming,
    Step,
    TableEvent,
    format_sample_value,
    reference_scrapes,
)

from loxone_trio_exporter.config import ExportConfig
from loxone_trio_exporter.protocol import (
    DaytimerEntry,
    DaytimerState,
    DaytimerStatesReceived,
    MessageIdentifier,
    MessageReader,
    TextState,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherEntry,
    WeatherState,
    WeatherStatesReceived,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    encode_daytimer_states,
    encode_text_states,
    encode_value_states,
    encode_weather_states,
    frame_binary_message,
    uuid_from_str,
)

# Only the seam uses ``runtime`` (scrape_todays_exporter and _NoProcessMetrics, below).
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)
from loxone_trio_exporter.runtime._owner import BuildInfo, StateOwner
from loxone_trio_exporter.runtime._web_source import ExporterWebSource
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.structure import (
    StateIndex,
    Structure,
    StructureLayout,
    build_layout,
    build_state_index,
    load_structure,
)

T = TypeVar("T")

# --- the seam -----------------------------------------------------------------------------------


class _NoProcessMetrics(Collector):
    """``process_*`` depend on the test process, not on the Miniservers: left out."""

    def collect(self) -> Iterable[object]:  # type: ignore[override]
        return ()


_TABLE_WIRE = {
    ValueStatesReceived: (MessageIdentifier.VALUE_STATES, encode_value_states),
    TextStatesReceived: (MessageIdentifier.TEXT_STATES, encode_text_states),
    DaytimerStatesReceived: (MessageIdentifier.DAYTIMER_STATES, encode_daytimer_states),
    WeatherStatesReceived: (MessageIdentifier.WEATHER_STATES, encode_weather_states),
}


def scrape_todays_exporter(
    miniservers: Sequence[str], export: ExportConfig, steps: Iterable[Step]
) -> list[bytes]:
    """THE SEAM: the body of every ``Scrape`` in ``steps``, as the exporter writes it.

    The only place these tests touch the exporter's internals: the state owner, fed the
    messages a connection task sends (tables framed and decoded by the real ``MessageReader``,
    so they arrive packed as in production), read through the web source that serves
    ``/metrics``. When issue 14 (or anything later) changes how state is held or rendered, edit
    this function (and its ``runtime`` imports) and nothing else: the steps, the reference and
    the assertions stay. Messages apply at trio time 0; ``DropStale`` passes every deadline.
    """
    owner = StateOwner(
        list(miniservers),
        export,
        build_info=BuildInfo(
            version=BUILD_VERSION,
            revision=BUILD_REVISION,
            python=BUILD_PYTHON,
            build_date=BUILD_DATE,
        ),
        wall_clock=lambda: WALL_CLOCK_UNIX,
    )
    web = ExporterWebSource(owner, process_collector=_NoProcessMetrics())
    layouts: dict[int, tuple[Structure, StructureLayout]] = {}  # id -> (kept alive, layout)
    bodies: list[bytes] = []
    for step in steps:
        if isinstance(step, Scrape):
            answer = web.render_metrics_now(None, None)
            assert answer.content_type == "text/plain; version=0.0.4; charset=utf-8"
            assert not answer.gzipped
            bodies.append(answer.body)
        elif isinstance(step, DropStale):
            owner.drop_stale(float("inf"))
        elif isinstance(step, Reload):
            owner.set_export(step.export)
        elif isinstance(step, ApplyTable):
            identifier, encode = _TABLE_WIRE[type(step.table)]
            reader = MessageReader()
            frames = frame_binary_message(identifier, encode(step.table.states))  # type: ignore[operator]
            decoded = [event for frame in frames if (event := reader.receive(frame)) is not None]
            owner.apply(TablesReceived(step.miniserver, *decoded), 0.0)  # type: ignore[arg-type]
        elif isinstance(step, LoadStructure):
            known = layouts.get(id(step.structure))
            if known is None:
                known = layouts[id(step.structure)] = (step.structure, build_layout(step.structure))
            owner.apply(StructureReady(step.miniserver, known[1], step.last_modified), 0.0)
        elif isinstance(step, Identify):
            owner.apply(MiniserverIdentified(step.miniserver, step.serial, step.firmware), 0.0)
        elif isinstance(step, GrantToken):
            owner.apply(TokenUpdated(step.miniserver, step.valid_until_unix), 0.0)
        elif isinstance(step, SetStreaming):
            state = ConnectionState.STREAMING if step.streaming else ConnectionState.CONNECTING
            owner.apply(StatusChanged(step.miniserver, state), 0.0)
        else:
            lost = SessionLost(
                step.miniserver,
                ReconnectReason(step.reason),
                "lost",
                auth_failure=step.auth_failure,
                protocol_error=step.protocol_error,
            )
            owner.apply(lost, 0.0)
    return bodies


# --- comparing bodies ---------------------------------------------------------------------------

_RENDER_DURATION_SAMPLE = re.compile(
    rb"^" + RENDER_DURATION.encode() + rb" (?P<value>\S+)$", re.MULTILINE
)


def mask_render_duration(body: bytes) -> bytes:
    """The body with the render duration's value (seconds >= 0) written as the placeholder."""

    def mask(match: re.Match[bytes]) -> bytes:
        assert float(match["value"]) >= 0.0
        return f"{RENDER_DURATION} {SECONDS_PLACEHOLDER}".encode()

    return _RENDER_DURATION_SAMPLE.sub(mask, body)


def families_of(body: bytes) -> list[tuple[str, str]]:
    """``(name, text)`` of each family in order; a family starts at its ``# HELP`` line."""
    # Label values and HELP never hold a raw "\n" (other line breaks, such as U+2028, may be
    # there: str.splitlines would cut at them).
    text = body.decode("utf-8")
    families: list[tuple[str, str]] = []
    for line in (f"{line}\n" for line in text.split("\n")[:-1]):
        if line.startswith("# HELP "):
            families.append((line.split(" ", 3)[2], ""))
        assert families, f"a line before the first family: {line!r}"
        name, lines = families[-1]
        families[-1] = (name, lines + line)
    return families


def assert_same_scrapes(
    miniservers: Sequence[str], export: ExportConfig, steps: Sequence[Step]
) -> None:
    actual = [
        mask_render_duration(body) for body in scrape_todays_exporter(miniservers, export, steps)
    ]
    expected = reference_scrapes(miniservers, export, steps)
    assert len(actual) == len(expected)
    for scrape, (got, want) in enumerate(zip(actual, expected, strict=True)):
        got_families, want_families = families_of(got), families_of(want)
        assert [name for name, _ in got_families] == [name for name, _ in want_families]
        for (name, got_text), (_, want_text) in zip(got_families, want_families, strict=True):
            assert got_text == want_text, f"scrape {scrape}, family {name}"
        assert got == want  # and byte for byte, as a whole


# --- what the exporter goes through -------------------------------------------------------------
# The strategies are built once, over slot numbers; ``scripts`` resolves the slots against the
# Miniservers at hand (their structures, state UUIDs and names). Building strategies per example
# would cost most of the run time in Hypothesis' strategy validation.

Load = tuple[Structure, StateIndex, str]  # the last: what LoxAPPversion3 answered


@attrs.frozen(eq=False)
class Source:
    """What one Miniserver may load and send: its structures and the state UUIDs to use."""

    #: Where it comes from, for a failing example's report (a file, or the JSON documents).
    origin: str
    loads: tuple[Load, ...] = attrs.field(repr=False)
    uuids: tuple[bytes, ...] = attrs.field(repr=False)
    whole_tables: tuple[TableEvent, ...] = attrs.field(default=(), repr=False)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """What Hypothesis prints for a failing example (never the whole structure)."""
        printer.text(f"Source(origin={self.origin!r})")


def _loaded(structure: Structure, last_modified: str) -> Load:
    return structure, build_state_index(structure), last_modified


_slots = st.integers(0, 255)
_table_templates = st.one_of(
    *[  # value tables twice as often as the others
        st.tuples(
            st.just(ValueStatesReceived),
            st.lists(st.tuples(_slots, exposition_doubles), min_size=1, max_size=8),
        )
        for _ in range(2)
    ],
    st.tuples(
        st.just(TextStatesReceived),
        st.lists(st.tuples(_slots, exposition_texts), min_size=1, max_size=4),
    ),
    st.tuples(
        st.just(DaytimerStatesReceived),
        st.lists(
            st.tuples(_slots, exposition_doubles, st.lists(daytimer_entries, max_size=3)),
            min_size=1,
            max_size=3,
        ),
    ),
    st.tuples(
        st.just(WeatherStatesReceived),
        st.lists(
            st.tuples(_slots, uint32s, st.lists(exposition_weather_entries, max_size=2)),
            min_size=1,
            max_size=2,
        ),
    ),
)
_names = st.lists(_slots, max_size=2)
#: (include_text, typed, then slots of excluded rooms, categories, types, names and states,
#: and max_series; or no filters).
_export_templates = st.one_of(
    # Half without filters: small structures often export nothing.
    st.tuples(st.booleans(), st.booleans()),
    st.tuples(
        st.booleans(),
        st.booleans(),
        _names,
        _names,
        _names,
        _names,
        _names,
        st.sampled_from([100_000, 100_000, 1, 3, 10]),
    ),
)
_GLOBS = ("*", "L*", "*a*", "?ight", "[!L]*", *CONTROL_NAMES)
_step_templates = st.one_of(
    # Tables most often: six branches (distinct objects: one_of counts the same object once).
    *[st.tuples(st.just("table"), _slots, _table_templates) for _ in range(6)],
    st.tuples(st.just("whole table"), _slots, _slots),
    st.tuples(st.just("load"), _slots, _slots),
    st.tuples(
        st.just("identify"),
        _slots,
        st.sampled_from(["504F94000000", "", "504F94A00001"]),
        st.sampled_from(["15.3.1.1", "", 'v"1\\2']),
    ),
    st.tuples(st.just("token"), _slots, exposition_doubles),
    st.tuples(st.just("streaming"), _slots, st.booleans()),
    st.tuples(
        st.just("lost"), _slots, st.sampled_from(RECONNECT_REASONS), st.booleans(), st.booleans()
    ),
    st.tuples(st.just("scrape")),
    st.tuples(st.just("scrape")),
    st.tuples(st.just("drop stale")),
    st.tuples(st.just("reload"), _export_templates),
)


def _pick(items: Sequence[T], slot: int) -> T:
    return items[slot % len(items)]


class _Resolver:
    """Turns templates into steps for the Miniservers of ``sources``."""

    def __init__(self, sources: dict[str, Source]) -> None:
        self.sources = sources
        self.names = list(sources)
        controls = [
            control
            for source in sources.values()
            for structure, _, _ in source.loads
            for control in structure.walk_controls()
        ]

        def values(found: Iterable[str]) -> list[str]:
            return sorted({*found, "nowhere"})

        self.rooms = values(control.room for control in controls)
        self.categories = values(control.category for control in controls)
        self.types = values(control.type for control in controls)
        self.control_names = values([*_GLOBS, *(control.name for control in controls)])
        # exclude_states: globs, state names and labels, alone or on one control type.
        self.state_globs = values(
            [
                "*",
                "v*",
                "*[[]1]",
                *(state.name for control in controls for state in control.states),
                *(state.label for control in controls for state in control.states),
                *(
                    f"{control.type}:{state.name}"
                    for control in controls
                    for state in control.states
                    if control.type
                ),
            ]
        )

    def export(self, template: tuple[Any, ...]) -> ExportConfig:
        if len(template) == 2:
            return ExportConfig(include_text=template[0], typed=template[1])
        include_text, typed, rooms, categories, types, names, states, max_series = template
        return ExportConfig(
            include_text=include_text,
            typed=typed,
            exclude_rooms=tuple(_pick(self.rooms, slot) for slot in rooms),
            exclude_categories=tuple(_pick(self.categories, slot) for slot in categories),
            exclude_types=tuple(_pick(self.types, slot) for slot in types),
            exclude_names=tuple(_pick(self.control_names, slot) for slot in names),
            exclude_states=tuple(_pick(self.state_globs, slot) for slot in states),
            max_series=max_series,
        )

    def table(self, source: Source, template: tuple[Any, ...]) -> TableEvent:
        kind, records = template
        uuids = source.uuids
        if kind is ValueStatesReceived:
            values = tuple((_pick(uuids, slot), value) for slot, value in records)
            return ValueStatesReceived(values)
        if kind is TextStatesReceived:
            texts = tuple(TextState(_pick(uuids, slot), text) for slot, text in records)
            return TextStatesReceived(texts)
        if kind is DaytimerStatesReceived:
            daytimers = tuple(DaytimerState(_pick(uuids, s), d, tuple(e)) for s, d, e in records)
            return DaytimerStatesReceived(daytimers)
        weather = tuple(WeatherState(_pick(uuids, s), u, tuple(e)) for s, u, e in records)
        return WeatherStatesReceived(weather)

    def load(self, name: str, slot: int) -> LoadStructure:
        return LoadStructure(name, *_pick(self.sources[name].loads, slot))

    def step(self, template: tuple[Any, ...]) -> Step:
        kind, *args = template
        if kind in ("scrape", "drop stale"):
            return Scrape() if kind == "scrape" else DropStale()
        if kind == "reload":
            return Reload(self.export(args[0]))
        return self.miniserver_step(kind, _pick(self.names, args[0]), args[1:])

    def miniserver_step(self, kind: str, name: str, args: list[Any]) -> Step:
        source = self.sources[name]
        if kind == "table":
            return ApplyTable(name, self.table(source, args[0]))
        if kind == "whole table":
            if not source.whole_tables:
                return Scrape()
            return ApplyTable(name, _pick(source.whole_tables, args[0]))
        if kind == "load":
            return self.load(name, args[0])
        event: type[Identify | GrantToken | SetStreaming | LoseSession] = {
            "identify": Identify,
            "token": GrantToken,
            "streaming": SetStreaming,
            "lost": LoseSession,
        }[kind]
        return event(name, *args)


@st.composite
def scripts(draw: st.DrawFn, sources: dict[str, Source]) -> tuple[ExportConfig, list[Step]]:
    """An ``[export]`` table and what happens: mostly a structure and its first tables for each
    Miniserver, then anything (a scrape now and then), and a scrape at the end."""
    resolve = _Resolver(sources)
    steps: list[Step] = []
    for name, source in sources.items():
        if draw(st.integers(0, 9)):  # rarely tables before any structure
            steps.append(resolve.load(name, draw(_slots)))
            steps += [ApplyTable(name, table) for table in source.whole_tables[:4]]
    steps += map(resolve.step, draw(st.lists(_step_templates, min_size=4, max_size=30)))
    steps.append(Scrape())
    return resolve.export(draw(_export_templates)), steps


def _raw_pool(*extra: Iterable[bytes]) -> tuple[bytes, ...]:
    """The given UUIDs, the generated documents' pool and two strangers."""
    pool = {uuid_from_str(uuid) for uuid in (*STATE_UUID_POOL, *STRANGER_UUIDS)}
    for uuids in extra:
        pool.update(uuids)
    return tuple(sorted(pool))


def _every_state(uuids: Sequence[bytes]) -> tuple[TableEvent, ...]:
    """One table of each kind with every state, as a Miniserver sends when updates start."""
    weather = WeatherEntry(1, 2, 270, 450, 55, 21.5, 20.0, 9.5, 0.25, 18.0, 1013.0)
    return (
        ValueStatesReceived(tuple((uuid, float(i)) for i, uuid in enumerate(uuids))),
        TextStatesReceived(tuple(TextState(uuid, f"text {i}") for i, uuid in enumerate(uuids))),
        DaytimerStatesReceived(
            tuple(
                DaytimerState(uuid, 0.0, (DaytimerEntry(0, 0, 60, 0, 1.0),) * (i % 3))
                for i, uuid in enumerate(uuids)
            )
        ),
        WeatherStatesReceived(tuple(WeatherState(uuid, 0, (weather,)) for uuid in uuids)),
    )


_documents = st.lists(
    st.tuples(
        structure_documents(),
        st.sampled_from(["2025-01-02 03:04:05", "2025-06-30 23:59:59", "", "not a time"]),
    ),
    min_size=1,
    max_size=2,
)


@st.composite
def generated_sources(draw: st.DrawFn) -> dict[str, Source]:
    """One or two Miniservers, each with one or two generated structures to load."""
    sources: dict[str, Source] = {}
    for name in draw(st.sampled_from([("home",), ("home", "cabin")])):
        documents = draw(_documents)
        loads = tuple(
            _loaded(load_structure(json.dumps(document)), last_modified)
            for document, last_modified in documents
        )
        # Mostly UUIDs the structures name; some they do not (strangers, unused pool UUIDs).
        named = tuple(dict.fromkeys(raw for _, index, _ in loads for raw in index))
        origin = json.dumps(documents)
        sources[name] = Source(origin, loads, named * 4 + _raw_pool(), _every_state(named))
    return sources


# --- the tests ----------------------------------------------------------------------------------


@given(sources=generated_sources(), data=st.data())
@settings(max_examples=120, deadline=None)
def test_generated_structures_render_as_the_reference(
    sources: dict[str, Source], data: st.DataObject
) -> None:
    export, steps = data.draw(scripts(sources))
    assert_same_scrapes(list(sources), export, steps)


def _decoded(messages: Iterable[tuple[MessageIdentifier, bytes]]) -> tuple[TableEvent, ...]:
    decode: dict[MessageIdentifier, Callable[[bytes], TableEvent]] = {
        MessageIdentifier.VALUE_STATES: lambda p: ValueStatesReceived(decode_value_states(p)),
        MessageIdentifier.TEXT_STATES: lambda p: TextStatesReceived(decode_text_states(p)),
        MessageIdentifier.DAYTIMER_STATES: lambda p: DaytimerStatesReceived(
            decode_daytimer_states(p)
        ),
        MessageIdentifier.WEATHER_STATES: lambda p: WeatherStatesReceived(decode_weather_states(p)),
    }
    return tuple(decode[identifier](payload) for identifier, payload in messages)


@functools.lru_cache(maxsize=32)
def _simulator_source(controls: int, seed: int) -> Source:
    """A generated Miniserver, its full tables and some changes, then a structure change."""
    model = SimulatedMiniserver.generate(controls, seed=seed)
    first = _loaded(model.structure, model.last_modified)
    tables = [*model.full_tables(), *model.step(50)]
    model.change_structure("2026-02-03 04:05:06")
    tables += model.full_tables()
    second = _loaded(model.structure, model.last_modified)
    uuids = _raw_pool(first[1], second[1])
    return Source(f"simulator({controls}, seed={seed})", (first, second), uuids, _decoded(tables))


@given(
    controls=st.integers(13, 30),
    seeds=st.lists(st.integers(0, 7), min_size=1, max_size=2, unique=True),
    data=st.data(),
)
@settings(max_examples=30, deadline=None)
def test_simulator_structures_render_as_the_reference(
    controls: int, seeds: list[int], data: st.DataObject
) -> None:
    sources = {f"sim{seed}": _simulator_source(controls, seed) for seed in seeds}
    export, steps = data.draw(scripts(sources))
    assert_same_scrapes(list(sources), export, steps)


REAL_FILES = ("loxone-java-showroom.LoxAPP3.json", "smarteon-2025.LoxAPP3.json")


def _captured_showroom_tables() -> tuple[TableEvent, ...]:
    """The value and text tables captured from the showroom Miniserver (vectors.json); the
    text capture ends in a cut record, which is left off."""
    vectors = json.loads(require_shared_fixture("vectors.json").read_text("utf-8"))
    values = decode_value_states(bytes.fromhex(vectors["value_events"][1]["hex"]))
    payload = bytes.fromhex(vectors["text_events"][1]["hex"])
    whole = 0
    while whole + 36 <= len(payload):
        length = int.from_bytes(payload[whole + 32 : whole + 36], "little")
        if whole + 36 + length > len(payload):
            break
        whole = min(whole + 36 + length + (-length % 4), len(payload))
    texts = decode_text_states(payload[:whole])
    assert values
    assert texts
    return ValueStatesReceived(values), TextStatesReceived(texts)


@functools.lru_cache(maxsize=4)
def _real_source(name: str) -> Source:
    text = require_shared_fixture(name).read_text("utf-8")
    structure = load_structure(text)
    model = SimulatedMiniserver.from_document(json.loads(text), seed=1)
    tables = _decoded([*model.full_tables(), *model.step(200)])
    if name == REAL_FILES[0]:
        tables = (*_captured_showroom_tables(), *tables)
    load = _loaded(structure, structure.last_modified)
    return Source(name, (load,), _raw_pool(load[1]), tables)


@pytest.mark.parametrize("name", REAL_FILES)
@given(data=st.data())
@settings(max_examples=40, deadline=None)
def test_real_structure_files_render_as_the_reference(name: str, data: st.DataObject) -> None:
    source = _real_source(name)
    sources = {"home": source, "cabin": source} if data.draw(st.booleans()) else {"home": source}
    export, steps = data.draw(scripts(sources))
    assert_same_scrapes(list(sources), export, steps)


@pytest.mark.parametrize("name", REAL_FILES)
def test_a_real_miniserver_streaming_renders_as_the_reference(name: str) -> None:
    """The plain case in full: structure, every table, streaming; text on, no filters."""
    source = _real_source(name)
    steps: list[Step] = [
        Identify("home", "504F94000000", "15.3.1.1"),
        LoadStructure("home", *source.loads[0]),
        *(ApplyTable("home", table) for table in source.whole_tables),
        SetStreaming("home", streaming=True),
        Scrape(),
        Scrape(),
    ]
    assert_same_scrapes(["home"], ExportConfig(include_text=True), steps)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0.0"),
        (-0.0, "0.0"),
        (22.5, "22.5"),
        (float("nan"), "NaN"),
        (float("inf"), "+Inf"),
        (float("-inf"), "-Inf"),
        (999999.9, "999999.9"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (-1234567.0, "-1234567.0"),
        (1750000000.25, "1.75000000025e+09"),
        (9999999999999998.0, "9.999999999999998e+15"),
        (1e16, "1e+16"),
        (1e-5, "1e-05"),
        (5e-324, "5e-324"),
    ],
)
def test_the_reference_number_format(value: float, text: str) -> None:
    """The reference's own format (what the equivalence tests rest on), spelled out."""
    assert format_sample_value(value) == text
