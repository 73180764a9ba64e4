"""Values in the family of their unit (issue 16, items 1 and 2): units read per state, converted
to base units, each state exported once; end to end against the simulator.

The byte-exact output for every structure the strategies make (and the real files) is checked
against the reference in test_render_equivalence; here the rules themselves, one by one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import trio
from exporter_harness import (
    miniserver,
    poll_async,
    select,
    start_exporter,
    start_simulator,
    state_refs,
    walk_controls,
)
from http_client import http_request
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)

from loxone_trio_exporter.exposition import MetricFamily
from loxone_trio_exporter.state import (
    CONVERSIONS,
    FAMILIES,
    PLAIN,
    ExportFilter,
    SeriesPlan,
    unit_code,
)
from loxone_trio_exporter.structure import layout_structure, readable_unit, state_unit

OPENMETRICS = "application/openmetrics-text; version=1.0.0"


def family_and_value(control_type: str, state: str, unit: str, value: float) -> tuple[str, float]:
    conversion = CONVERSIONS[unit_code(control_type, state, unit)]
    return FAMILIES[conversion.family].name, conversion(value)


@pytest.mark.parametrize(
    ("control_type", "state", "unit", "value", "expected"),
    [
        ("InfoOnlyAnalog", "value", "°C", 21.5, ("loxone_control_temperature_celsius", 21.5)),
        ("InfoOnlyAnalog", "value", "°F", 212.0, ("loxone_control_temperature_celsius", 100.0)),
        ("InfoOnlyAnalog", "value", "kW", 1.234, ("loxone_control_power_watts", 1234.0)),
        ("Meter", "actual", "kW", 0.1, ("loxone_control_power_watts", 100.0)),
        ("Meter", "total", "kWh", 1.5, ("loxone_control_meter_energy_joules_total", 5.4e6)),
        ("Meter", "totalDay", "kWh", 0.3, ("loxone_control_meter_energy_joules_total", 1.08e6)),
        ("InfoOnlyAnalog", "value", "kWh", 2.0, ("loxone_control_energy_joules", 7.2e6)),
        ("Meter", "total", "m³", 12.5, ("loxone_control_meter_volume_cubic_meters_total", 12.5)),
        ("InfoOnlyAnalog", "value", "%", 45.0, ("loxone_control_ratio", 0.45)),
        ("InfoOnlyAnalog", "value", "hPa", 1013.2, ("loxone_control_pressure_pascals", 101320.0)),
        ("InfoOnlyAnalog", "value", "km/h", 36.0, ("loxone_control_speed_meters_per_second", 10.0)),
        ("Slider", "value", "min", 1.5, ("loxone_control_duration_seconds", 90.0)),
        (
            "InfoOnlyAnalog",
            "value",
            "l/h",
            3600.0,
            ("loxone_control_flow_cubic_meters_per_second", 1e-3),
        ),
        ("InfoOnlyAnalog", "value", "ppm", 415.0, ("loxone_control_value", 415.0)),
        ("InfoOnlyAnalog", "value", "", 3.0, ("loxone_control_value", 3.0)),
        ("InfoOnlyAnalog", "value", "Kč/kWh", 4.2, ("loxone_control_value", 4.2)),
    ],
)
def test_a_unit_picks_the_family_and_the_conversion(
    control_type: str, state: str, unit: str, value: float, expected: tuple[str, float]
) -> None:
    assert family_and_value(control_type, state, unit, value) == expected


def test_list_states_are_typed_by_their_name() -> None:
    assert unit_code("IRoomController", "temperatures[3]", "°C") == unit_code(
        "IRoomController", "temperatures", "°C"
    )
    assert unit_code("IRoomController", "temperatures[3]", "°C") != PLAIN


@pytest.mark.parametrize(
    ("control_type", "state", "unit", "temp_unit", "read"),
    [
        ("IRoomControllerV2", "tempActual", "°", 0, "°C"),
        ("IRoomControllerV2", "comfortTemperature", "°", 1, "°F"),
        ("IRoomControllerV2", "humidityActual", "°", 0, ""),  # the format is for temperatures
        ("IRoomControllerV2", "operatingMode", "°", 0, ""),
        ("IRoomController", "temperatures", "°", None, "°C"),
        ("InfoOnlyAnalog", "value", "°", None, "°C"),
        ("InfoOnlyAnalog", "error", "kW", None, ""),
        ("Slider", "max", "%", None, "%"),
        ("Meter", "actual", "kW", None, "kW"),
        ("Meter", "totalNegYear", "kWh", None, "kWh"),
        ("EnergyManager2", "Gpwr", "", None, "kW"),
        ("EnergyManager2", "Ssoc", "", None, "%"),
        ("Switch", "active", "W", None, ""),
    ],
)
def test_each_state_gets_the_unit_its_format_describes(
    control_type: str, state: str, unit: str, temp_unit: int | None, read: str
) -> None:
    assert state_unit(control_type, state, unit, temp_unit) == read


def test_units_are_written_as_people_read_them() -> None:
    assert readable_unit("°", None) == readable_unit("°", 0) == "°C"
    assert readable_unit("°", 1) == "°F"
    assert readable_unit("kWh", 1) == "kWh"


def test_a_family_name_must_end_in_its_unit() -> None:
    with pytest.raises(ValueError, match="unit"):
        MetricFamily("loxone_control_power", "gauge", "x", {}, unit="watts")
    MetricFamily("loxone_x_joules_total", "counter", "x", {}, unit="joules")


def _control_states(samples: dict[Any, float], name: str) -> dict[tuple[str, str], float]:
    """(uuid, state) -> value of every control family's series of Miniserver ``name``."""
    found: dict[tuple[str, str], float] = {}
    for (family, labels), value in samples.items():
        if family in {f.name for f in FAMILIES}:
            label = dict(labels)
            if label["miniserver"] == name:
                key = (label["uuid"], label["state"])
                assert key not in found, f"{key} exported twice"
                found[key] = value
    return found


async def test_typed_families_end_to_end(tmp_path: Path) -> None:
    with trio.fail_after(40):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60)
            typed = await start_exporter(
                nursery, tmp_path / "typed", [miniserver(server)], typed=True
            )
            plain = await start_exporter(
                nursery, tmp_path / "plain", [miniserver(server)], typed=False
            )
            await typed.wait_until_streaming("home")
            await plain.wait_until_streaming("home")
            values = (await http_request(server.port, "/sim/values")).json()["values"]

            async def settled() -> bool:
                a, b = await typed.samples(), await plain.samples()
                return (
                    len(_control_states(a, "home"))
                    == len(select(b, "loxone_control_value"))
                    >= len(values) // 2
                )

            await poll_async(settled, within=15)
            typed_samples = await typed.samples()
            plain_samples = await plain.samples()
            openmetrics = await typed.scrape(OPENMETRICS)
            nursery.cancel_scope.cancel()

    # Each state once, in its family or in loxone_control_value: typing adds no series.
    typed_states = _control_states(typed_samples, "home")
    plain_states = _control_states(plain_samples, "home")
    assert typed_states.keys() == plain_states.keys()

    document = server.model.document
    checked: set[str] = set()
    for control, _parent in walk_controls(document):
        for label, uuid in state_refs(control.get("states") or {}):
            if uuid not in values or (control["uuidAction"], label) not in typed_states:
                continue
            family = _family_of(typed_samples, control["uuidAction"], label)
            raw = values[uuid]
            got = typed_states[control["uuidAction"], label]
            if control["type"] == "IRoomControllerV2" and label == "tempActual":
                assert (family, got) == ("loxone_control_temperature_celsius", raw)
            elif control["type"] == "IRoomControllerV2" and label == "operatingMode":
                assert (family, got) == ("loxone_control_value", raw)
            elif control["type"] == "Meter" and label == "actual":
                assert family == "loxone_control_power_watts"
                assert got == pytest.approx(raw * 1000, rel=1e-14)
            elif control["type"] == "Meter" and label.startswith("total"):
                assert family == "loxone_control_meter_energy_joules_total"
                assert got == pytest.approx(raw * 3.6e6, rel=1e-14)
            elif _analog(control, label, "%.0f%%"):
                assert (family, got) == ("loxone_control_ratio", pytest.approx(raw / 100))
            elif _analog(control, label, "%.0fppm"):
                assert (family, got) == ("loxone_control_value", raw)
            else:
                continue
            checked.add(f"{control['type']}.{label}")
    assert {"IRoomControllerV2.tempActual", "Meter.actual", "Meter.total"} <= checked

    # The Meter's info names both units; a bare degree sign reads °C.
    meters = select(typed_samples, "loxone_control_info", control_type="Meter")
    assert meters
    assert all(("unit", "kW") in key[1] and ("total_unit", "kWh") in key[1] for key in meters)
    rooms = select(typed_samples, "loxone_control_info", control_type="IRoomControllerV2")
    assert rooms
    assert all(("unit", "°C") in key[1] for key in rooms)

    # OpenMetrics: the unit of each typed family is declared, and a parser reads it all.
    assert "# UNIT loxone_control_power_watts watts\n" in openmetrics
    assert "# TYPE loxone_control_meter_energy_joules counter\n" in openmetrics
    assert "# UNIT loxone_control_meter_energy_joules joules\n" in openmetrics
    parsed = {family.name: family for family in openmetrics_families(openmetrics)}
    assert parsed["loxone_control_power_watts"].unit == "watts"
    assert parsed["loxone_weather_barometric_pressure_pascals"].unit == "pascals"


def _family_of(samples: dict[Any, float], uuid: str, state: str) -> str:
    (family,) = [
        name
        for name, labels in samples
        if ("uuid", uuid) in labels and ("state", state) in labels and name != "loxone_control_text"
    ]
    return family


def _analog(control: dict[str, Any], label: str, fmt: str) -> bool:
    """The value state of an analog sensor of format ``fmt``."""
    details = control.get("details") or {}
    return control["type"] == "InfoOnlyAnalog" and label == "value" and details.get("format") == fmt


@given(st.lists(st.floats(), max_size=40), st.integers(0, len(CONVERSIONS) - 1))
def test_converting_a_block_is_converting_each_value(values: list[float], code: int) -> None:
    conversion = CONVERSIONS[code]
    for block, one in zip(conversion.many(values), map(conversion, values), strict=True):
        assert block == one or (math.isnan(block) and math.isnan(one))


def test_a_file_of_more_distinct_units_than_a_byte_holds_loses_only_the_rest() -> None:
    uuid = "0f869a64-{:04x}-0000-ffffd4c75dbaf53c"
    controls = {
        f"c{i}": {
            "name": f"Sensor {i}",
            "type": "InfoOnlyAnalog",
            "uuidAction": uuid.format(i),
            "states": {"value": uuid.format(i)},
            "details": {"format": f"%.1f unit{i}"},
        }
        for i in range(300)
    }
    layout = layout_structure(json.dumps({"lastModified": "", "controls": controls}))
    units = list(layout.state_units())
    assert units[:255] == [f"unit{i}" for i in range(255)]
    assert set(units[255:]) == {""}  # the byte is full: no unit, still exported
    plan = SeriesPlan(layout, ExportFilter(), "home")
    assert len(plan.series_control) == 300
