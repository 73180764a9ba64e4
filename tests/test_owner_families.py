"""What each family of design 3.3 holds, from real tables of simulated Miniservers."""

from __future__ import annotations

import datetime

import pytest
from owner_feed import (
    family,
    family_names,
    make_owner,
    series_of,
    start_streaming,
    structure_ready,
)

from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    decode_daytimer_states,
    decode_weather_states,
    uuid_from_str,
)
from loxone_trio_exporter.runtime._messages import (
    MiniserverIdentified,
    StructureReady,
    TokenUpdated,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.structure import build_layout


def test_text_daytimer_and_weather_tables_reach_their_families():
    model = SimulatedMiniserver.generate(40, seed=6)
    owner = make_owner(include_text=True)
    start_streaming(owner, "home", model)
    texts = model.values_snapshot()["texts"]
    text_series = series_of(owner, "loxone_control_text")
    assert text_series
    for labels, value in text_series.items():
        as_dict = dict(labels)
        state_uuid = next(
            state.uuid
            for control in model.structure.walk_controls()
            if control.uuid_action == as_dict["uuid"]
            for state in control.states
            if state.label == as_dict["state"]
        )
        assert (as_dict["text"], value) == (texts[state_uuid][:200], 1.0)

    full = dict(model.full_tables())
    daytimers = decode_daytimer_states(full[MessageIdentifier.DAYTIMER_STATES])
    entries = series_of(owner, "loxone_daytimer_entries")
    assert sorted(entries.values()) == sorted(float(len(d.entries)) for d in daytimers)

    actual = uuid_from_str(model.structure.weather_server.actual)
    (weather,) = [
        w for w in decode_weather_states(full[MessageIdentifier.WEATHER_STATES]) if w.uuid == actual
    ]
    entry = weather.entries[0]
    labels = (("miniserver", "home"),)
    snapshot = owner.snapshot()
    assert family(snapshot, "loxone_weather_temperature_celsius").series == {
        labels: entry.temperature
    }
    assert family(snapshot, "loxone_weather_relative_humidity_ratio").series == {
        labels: float(f"{entry.relative_humidity / 100:.15g}")
    }
    assert family(snapshot, "loxone_weather_barometric_pressure_pascals").series == {
        labels: float(f"{entry.barometric_pressure * 100:.15g}")
    }
    assert family(snapshot, "loxone_weather_wind_speed_meters_per_second").series == {
        labels: float(f"{entry.wind_speed / 3.6:.15g}")
    }
    assert family(snapshot, "loxone_weather_precipitation_meters").series == {
        labels: float(f"{entry.precipitation / 1000:.15g}")
    }
    weather_families = [
        name for name in family_names(snapshot) if name.startswith("loxone_weather")
    ]
    assert len(weather_families) == 9


def test_text_family_only_with_include_text():
    model = SimulatedMiniserver.generate(10, seed=6)
    owner = make_owner()
    start_streaming(owner, "home", model)
    assert "loxone_control_text" not in family_names(owner.snapshot())


def test_export_filters_come_from_the_config():
    model = SimulatedMiniserver.generate(60, seed=1)
    owner = make_owner(exclude_types=("Dimmer",), exclude_names=("Temp*",))
    start_streaming(owner, "home", model)
    types = {dict(labels)["control_type"] for labels in series_of(owner, "loxone_control_value")}
    names = {dict(labels)["control"] for labels in series_of(owner, "loxone_control_info")}
    assert "Dimmer" not in types
    assert not [name for name in names if name.startswith("Temp")]
    controls = {
        dict(labels)["status"]: value
        for labels, value in series_of(owner, "loxone_exporter_controls").items()
    }
    assert controls["discovered"] == sum(1 for _ in model.structure.walk_controls())
    assert 0 < controls["exported"] < controls["discovered"]


def test_miniserver_info_and_timestamps():
    model = SimulatedMiniserver.generate(10, seed=12)
    owner = make_owner()
    owner.apply(MiniserverIdentified("home", "504F94A00001", "15.3.1"), 0.0)
    info = series_of(owner, "loxone_miniserver_info")
    assert [dict(labels) for labels in info] == [
        {
            "miniserver": "home",
            "serial": "504F94A00001",
            "name": "",
            "project": "",
            "firmware": "15.3.1",
            "generation": "",
        }
    ]
    owner.apply(TokenUpdated("home", 1_760_000_123.0), 0.0)
    start_streaming(owner, "home", model)
    ms_info = model.structure.ms_info
    info = series_of(owner, "loxone_miniserver_info")
    assert [dict(labels) for labels in info] == [
        {
            "miniserver": "home",
            "serial": ms_info.serial_nr,
            "name": ms_info.ms_name,
            "project": ms_info.project_name,
            "firmware": "15.3.1",
            "generation": "Gen 2",
        }
    ]
    home = (("miniserver", "home"),)
    assert series_of(owner, "loxone_exporter_token_expiry_timestamp_seconds") == {
        home: 1_760_000_123.0
    }
    moment = datetime.datetime.strptime(model.last_modified, "%Y-%m-%d %H:%M:%S")
    assert series_of(owner, "loxone_exporter_structure_timestamp_seconds") == {
        home: moment.replace(tzinfo=datetime.UTC).timestamp()
    }
    # A lastModified that is no time gives no series rather than a made-up one.
    owner.apply(StructureReady("home", build_layout(model.structure), "yesterday"), 0.0)
    assert series_of(owner, "loxone_exporter_structure_timestamp_seconds") == {}


@pytest.mark.parametrize(
    ("miniserver_type", "generation"),
    [(0, "Gen 1"), (1, "Go Gen 1"), (2, "Gen 2"), (3, "Go Gen 2"), (4, "Compact"), (7, "")],
)
def test_generation_label(miniserver_type, generation):
    document = SimulatedMiniserver.generate(3, seed=1).document
    document["msInfo"]["miniserverType"] = miniserver_type
    model = SimulatedMiniserver.from_document(document, seed=1)
    owner = make_owner()
    owner.apply(structure_ready("home", model), 0.0)
    (labels,) = series_of(owner, "loxone_miniserver_info")
    assert dict(labels)["generation"] == generation


def test_build_info():
    owner = make_owner()
    assert series_of(owner, "loxone_exporter_build_info") == {
        (
            ("version", "1.2.3"),
            ("revision", "abc123"),
            ("python", "3.11.9"),
            ("build_date", "2026-01-02"),
        ): 1.0
    }
