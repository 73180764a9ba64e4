"""``SeriesStore``: values by series number, filled from decoded state tables."""

from __future__ import annotations

from array import array

from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    MessageReader,
    TextStatesReceived,
    ValueStatesReceived,
    decode_text_states,
    decode_value_states,
    frame_binary_message,
    uuid_from_str,
    uuid_to_str,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.state import ExportFilter, SeriesPlan, SeriesStore, TableKind, freeze
from loxone_trio_exporter.structure import build_layout, layout_structure


def store_of(layout, export_filter=None) -> SeriesStore:
    return SeriesStore(SeriesPlan(layout, export_filter or ExportFilter(), "showroom"))


def values_by_state(store: SeriesStore) -> dict[str, list[float]]:
    plan = store.plan
    found: dict[str, list[float]] = {}
    for family, start in enumerate(store.family_start):
        values = array("d", store.family_values(family))
        for position, value in enumerate(values, start):
            series = store.position_series[position]
            state = plan.state_text[series].decode().split('"')[1]
            found.setdefault(state, []).append(value)
    return found


def test_a_real_value_table_reaches_every_owner(shared_fixture, vectors):
    layout = layout_structure(shared_fixture("loxone-java-showroom.LoxAPP3.json").read_bytes())
    store = store_of(layout)
    table = decode_value_states(bytes.fromhex(vectors["value_events"][1]["hex"]))
    strangers = store.apply_values(table)
    assert store.events[TableKind.VALUE] == 79
    by_state = values_by_state(store)
    temperatures = [by_state[f"temperatures[{i}]"][0] for i in range(7)]
    assert temperatures == [3.0, 22.5, 23.0, 5.0, 25.5, 1.0, 1.0]
    names = [text.decode().split('"')[3] for text in store.plan.global_text]
    globals_ = {names[series]: value for series, value in store.global_values.items()}
    assert (globals_["operatingMode"], globals_["sunrise"], globals_["sunset"]) == (5, 461, 952)
    known = layout.known_uuids()
    assert strangers == sum(1 for raw, _ in table if raw not in known)


def test_series_are_placed_in_the_order_they_first_get_a_value():
    model = SimulatedMiniserver.generate(20, seed=1)
    store = store_of(build_layout(model.structure))
    (value_table, *_rest) = model.full_tables()
    states = list(decode_value_states(value_table[1]))
    store.apply_values(reversed(states))
    order = list(store.position_series)
    placed = [series for series in order if series >= 0]
    assert len(placed) == len(set(placed)) > 0
    store.apply_values(states)  # known series keep their place
    assert list(store.position_series) == order
    # Each family's region fills from its start, in the order its series first got a value.
    for family, start in enumerate(store.family_start):
        filled = len(store.family_values(family)) // 8
        region = order[start : start + store.plan.family_series[family]]
        assert all(series >= 0 for series in region[:filled])
        assert all(series < 0 for series in region[filled:])
    # An event is one write: the values follow, in place.
    by_uuid = dict(states)
    for raw, value in store.records():
        assert by_uuid[raw] == value


def test_records_keep_every_named_state_exported_or_not():
    model = SimulatedMiniserver.generate(20, seed=3)
    layout = build_layout(model.structure)
    nothing = store_of(layout, ExportFilter(exclude_names=("*",)))
    (value_table, *_rest) = model.full_tables()
    states = decode_value_states(value_table[1])
    assert nothing.apply_values(states) == 0
    assert nothing.value_series == len(nothing.global_values)
    assert dict(nothing.records()) == dict(states)
    # A new plan (filters changed) gets the values at once, in the order they came.
    everything = nothing.replay(SeriesPlan(layout, ExportFilter(), "showroom"))
    assert dict(everything.records()) == dict(states)
    assert everything.value_series > nothing.value_series
    assert everything.events[TableKind.VALUE] == 0  # a replay is no news


def test_texts_are_cut_and_only_kept_for_named_states():
    model = SimulatedMiniserver.generate(20, seed=4)
    store = store_of(build_layout(model.structure))
    reader = MessageReader()
    for identifier, payload in model.full_tables():
        for frame in frame_binary_message(identifier, payload):
            event = reader.receive(frame)
            if isinstance(event, TextStatesReceived):
                assert store.apply_texts(event.states) == 0
            elif isinstance(event, ValueStatesReceived):
                store.apply_values(event.states)
    texts = model.values_snapshot()["texts"]
    assert {uuid_to_str(raw): text for raw, text in store.raw_texts.items()} == {
        uuid: text[:200] for uuid, text in texts.items()
    }
    assert set(store.texts.values()) <= {text[:200] for text in texts.values()}


def test_a_frozen_view_shares_what_did_not_change():
    model = SimulatedMiniserver.generate(20, seed=5)
    store = store_of(build_layout(model.structure))
    tables = dict(model.full_tables())
    store.apply_values(decode_value_states(tables[MessageIdentifier.VALUE_STATES]))
    first = freeze(store, None, include_text=True)
    assert freeze(store, first, include_text=True).values is first.values  # nothing changed
    store.apply_texts(())
    second = freeze(store, first, include_text=True)
    assert second.values is first.values
    assert second.info is first.info
    stranger = uuid_from_str("0fffffff-ffff-ffff-ffffffffffffffff")
    assert store.apply_values([(stranger, 1.0)]) == 1
    third = freeze(store, second, include_text=True)
    assert third.values is not second.values
    for new, old in zip(third.values, second.values, strict=True):
        assert (new is None) == (old is None)
        if new is None or old is None:
            continue  # a family none of the series is in
        assert new.values == old.values  # a copy, equal: nothing was written
        assert new.lineage is old.lineage


def test_texts_by_series_only_while_exported_and_rebuilt_when_turned_on():
    model = SimulatedMiniserver.generate(20, seed=4)
    layout = build_layout(model.structure)
    plan = SeriesPlan(layout, ExportFilter(), "home")
    exported = SeriesStore(plan)
    hidden = SeriesStore(SeriesPlan(layout, ExportFilter(), "home"), texts_exported=False)
    tables = dict(model.full_tables())
    texts = decode_text_states(tables[MessageIdentifier.TEXT_STATES])
    assert texts
    for store in (exported, hidden):
        assert store.apply_texts(texts) == 0
    assert exported.texts
    assert hidden.texts == {}
    assert hidden.raw_texts == exported.raw_texts  # kept by UUID: a reload may want them
    assert hidden.events == exported.events
    freeze(hidden, None, include_text=False)  # clears the changed flags
    assert not hidden.changed_texts
    hidden.export_texts(True)
    assert hidden.texts == exported.texts
    assert list(hidden.texts) == list(exported.texts)  # the same order
    assert hidden.changed_texts
    hidden.export_texts(False)
    assert hidden.texts == {}
    # A replay keeps the setting.
    assert hidden.replay(SeriesPlan(layout, ExportFilter(), "home")).texts == {}
