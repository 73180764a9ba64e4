from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structure_samples import control, structure, uuid

from loxone_trio_exporter.structure import structure_from_dict, unit_from_format


@pytest.mark.parametrize(
    ("fmt", "unit"),
    [
        ("%.1f°", "°"),
        ("%.2f °C", "°C"),
        ("%.3fkW", "kW"),
        ("%.1fkWh", "kWh"),
        ("%.0f%%", "%"),
        ("%.2f %%", "%"),
        ("%.0fppm", "ppm"),
        ("%.2f g/m³", "g/m³"),
        ("%.1f cm", "cm"),
        ("%.0fkm/h", "km/h"),
        ("%.1fl/m²/h", "l/m²/h"),
        ("%.3fKč/kWh", "Kč/kWh"),
        ("%.2f s", "s"),
        ("%.0f", ""),
        ("%s", ""),
        ("", ""),
        (None, ""),
        ("Požadavek: %.0f °C", "°C"),
        ("po %.1f min", "min"),
        ("po %.1f h", "h"),
        ("%.0f / 10 (z této funkce)", "/ 10 (z této funkce)"),
        # conversions other than %f
        ("%d W", "W"),
        ("%i lx", "lx"),
        ("%.0lf V", "V"),
        ("%5.2f A", "A"),
        ("%-8.3e m", "m"),
        ("%I64d s", "s"),
        ("%.f l", "l"),
        # an escaped percent before the conversion is prose, not a conversion
        ("100%% = %.0f kW", "kW"),
        # no conversion at all: nothing is a unit
        ("kW", ""),
        ("%%", ""),
        ("50 %", ""),
    ],
)
def test_unit_from_format(fmt, unit):
    assert unit_from_format(fmt) == unit


@given(st.text())
def test_any_text_gives_a_trimmed_unit(fmt):
    unit = unit_from_format(fmt)
    assert unit == unit.strip()
    assert len(unit) <= len(fmt)


@given(
    precision=st.integers(min_value=0, max_value=9),
    suffix=st.text(st.characters(blacklist_characters="%"), max_size=12),
)
def test_the_text_after_the_conversion_is_the_unit(precision, suffix):
    assert unit_from_format(f"%.{precision}f{suffix}") == suffix.strip()


def _meter(details):
    states = {name: uuid() for name in ("actual", "total", "totalDay", "totalNeg", "storage")}
    states["totalNegMonth"] = uuid()
    states["other"] = uuid()
    doc = structure(control("Meter", "Meter", states=states, details=details))
    (meter,) = structure_from_dict(doc).controls
    return meter, {state.name: state.unit for state in meter.states}


def test_meter_states_have_their_own_formats():
    meter, units = _meter(
        {
            "actualFormat": "%.3fkW",
            "totalFormat": "%.1fkWh",
            "totalFormatNeg": "%.1f kWh out",
            "storageFormat": "%.0f%%",
            "format": "%.2f x",
        }
    )
    assert units == {
        "actual": "kW",
        "total": "kWh",
        "totalDay": "kWh",
        "totalNeg": "kWh out",
        "totalNegMonth": "kWh out",
        "storage": "%",
        "other": "x",
    }
    assert meter.unit == "kW"
    assert meter.details_format == "%.2f x"


def test_meter_falls_back_to_format():
    meter, units = _meter({"format": "%.1f W", "totalFormat": "%.1f Wh"})
    assert units == {
        "actual": "W",
        "total": "Wh",
        "totalDay": "Wh",
        "totalNeg": "W",
        "totalNegMonth": "W",
        "storage": "W",
        "other": "W",
    }
    assert meter.unit == "W"


def test_meter_without_formats_has_no_units():
    meter, units = _meter({"type": "unidirectional"})
    assert set(units.values()) == {""}
    assert meter.unit == ""


def test_other_controls_use_details_format_for_every_state():
    doc = structure(
        control(
            "Room",
            "IRoomControllerV2",
            states={"tempActual": uuid(), "tempTarget": uuid(), "actual": uuid()},
            details={"format": "%.1f°", "actualFormat": "%.1f kW"},
        )
    )
    (room,) = structure_from_dict(doc).controls
    assert {state.unit for state in room.states} == {"°"}
    assert room.unit == "°"


def test_formats_that_are_not_strings_are_ignored():
    doc = structure(control("A", details={"format": 5}), control("B", details=["%.1f W"]))
    a, b = structure_from_dict(doc).controls
    assert (a.unit, a.details_format) == ("", None)
    assert (b.unit, b.details_format) == ("", None)
