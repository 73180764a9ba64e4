from __future__ import annotations

from loxone_trio_exporter.protocol import (
    DaytimerStatesReceived,
    MessageIdentifier,
    MessageReader,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
    decode_value_states,
    frame_binary_message,
    uuid_to_str,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.state import ExportFilter, MiniserverValues, build_catalogue
from loxone_trio_exporter.structure import build_state_index, load_structure


def values_for(structure):
    index = build_state_index(structure)
    return MiniserverValues(build_catalogue("showroom", structure, index, ExportFilter()))


def test_real_value_table_reaches_every_owner(shared_fixture, vectors):
    structure = load_structure(shared_fixture("loxone-java-showroom.LoxAPP3.json").read_bytes())
    values = values_for(structure)
    table = decode_value_states(bytes.fromhex(vectors["value_events"][1]["hex"]))
    values.apply_values(table)
    assert values.events["value"] == 79
    by_state = {}
    for labels, value in values.control_values.items():
        label = dict(labels)
        by_state.setdefault(label["state"], []).append(value)
    temperatures = [by_state[f"temperatures[{i}]"][0] for i in range(7)]
    assert temperatures == [3.0, 22.5, 23.0, 5.0, 25.5, 1.0, 1.0]
    globals_ = {dict(labels)["state"]: value for labels, value in values.global_values.items()}
    assert (globals_["operatingMode"], globals_["sunrise"], globals_["sunset"]) == (5, 461, 952)
    # Resolved: 52 of 79 UUIDs; the rest are counted, not lost silently.
    index = build_state_index(structure)
    assert values.unknown_uuids == sum(1 for raw, _ in table if raw not in index)


def test_full_tables_of_the_simulator_fill_every_family():
    model = SimulatedMiniserver.generate(30, seed=4)
    values = values_for(model.structure)
    reader = MessageReader()
    for identifier, payload in model.full_tables():
        for message in frame_binary_message(identifier, payload):
            event = reader.receive(message)
            if isinstance(event, ValueStatesReceived):
                values.apply_values(event.states)
            elif isinstance(event, TextStatesReceived):
                values.apply_texts(event.states)
            elif isinstance(event, DaytimerStatesReceived):
                values.apply_daytimers(event.states)
            elif isinstance(event, WeatherStatesReceived):
                values.apply_weather(event.states)
    snapshot = model.values_snapshot()
    # Each simulated value appears on every owner's series with exactly that value.
    catalogue = values.catalogue
    for raw, owners in catalogue.control_values.items():
        uuid = uuid_to_str(raw)
        if uuid in snapshot["values"]:
            for labels in owners:
                assert values.control_values[labels] == snapshot["values"][uuid]
        elif uuid in snapshot["texts"]:
            for labels in owners:
                assert values.texts[labels] == snapshot["texts"][uuid][:200]
    assert values.daytimer_entries
    assert all(count >= 0 for count in values.daytimer_entries.values())
    assert values.weather is not None
    assert set(values.events) == {"value", "text", "daytimer", "weather"}


def test_a_step_updates_only_what_changed():
    model = SimulatedMiniserver.generate(20, seed=1)
    values = values_for(model.structure)
    (value_table, *_rest) = model.full_tables()
    values.apply_values(decode_value_states(value_table[1]))
    before = dict(values.control_values)
    for identifier, payload in model.step(50):
        if identifier is MessageIdentifier.VALUE_STATES:
            values.apply_values(decode_value_states(payload))
    changed = {k for k, v in values.control_values.items() if before.get(k) != v}
    assert 0 < len(changed) <= 50 * max(len(o) for o in values.catalogue.control_values.values())
    assert values.control_values.keys() == before.keys()


def test_published_values_are_one_copy_until_the_next_value_table():
    model = SimulatedMiniserver.generate(20, seed=5)
    values = values_for(model.structure)
    first_table, second_table = (
        decode_value_states(payload)
        for payload in (
            dict(model.full_tables())[MessageIdentifier.VALUE_STATES],
            _value_payload(model.step(40)),
        )
    )
    values.apply_values(first_table)
    published = values.published_control_values()
    assert published == values.control_values
    assert published is not values.control_values
    assert values.published_control_values() is published  # no table since: the same object
    values.apply_texts(())
    assert values.published_control_values() is published  # text tables leave values alone

    before = dict(published)
    values.apply_values(second_table)
    assert published == before  # the copy handed out does not follow later tables
    renewed = values.published_control_values()
    assert renewed is not published
    assert renewed == values.control_values != before


def _value_payload(messages):
    (payload,) = [
        payload for identifier, payload in messages if identifier is MessageIdentifier.VALUE_STATES
    ]
    return payload
