"""The metric families of design 3.3: names, HELP, TYPE, and which series go where.

A pure function of frozen facts (``_facts.MiniserverFacts``; no clock, no I/O, nothing written):
the owner calls ``build_snapshot`` when something changed and publishes the result. The large
families are one part per Miniserver (``SeriesParts``), taken from the store's frozen view: an
unchanged Miniserver hands on the same part objects, and the renderer skips them.

Series that do not exist are absent, never 0 or NaN placeholders. The exceptions are
``loxone_up`` (0 or 1 for every configured Miniserver) and the auth-failure and protocol-error
counters, which start at 0 so that ``increase()`` sees their first step.

The ``process_*`` families, ``loxone_exporter_render_duration_seconds`` and the reload gauges
(``reload_families``) belong to the web source, which adds them at render time.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Mapping, Sequence

from ..exposition import LabelSet, LinesPart, MetricFamily, SeriesParts, Snapshot
from ..protocol import WeatherEntry
from ..state import FAMILIES, PLAIN, Conversion, StoreView
from ._facts import BuildInfo, MiniserverFacts, ReloadStatus

Series = dict[LabelSet, float]

SECONDS = "seconds"  # the unit of the timestamp and duration families

#: ``msInfo.miniserverType`` -> the ``generation`` label ([DOC-SF] msInfo; protocol notes 1.3).
GENERATIONS = {0: "Gen 1", 1: "Go Gen 1", 2: "Gen 2", 3: "Go Gen 2", 4: "Compact"}
#: ``lastModified`` as the structure file writes it: the Miniserver's local time, no zone.
STRUCTURE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
_FROM_WEATHER = (
    "of the current weather entry (weatherServer.states.actual), from the Miniserver's "
    "weather-state events (Loxone weather service)"
)

#: (WeatherEntry field, family name, unit, what it is, conversion from the unit the Miniserver
#: sends, as in the weather formats of the structure file: °C, %, km/h, °, W/m², mm, hPa). Names
#: carry base units: ``promtool check metrics`` wants them, and a panel needs no conversion.
WEATHER_FIELDS: tuple[tuple[str, str, str, str, Conversion], ...] = (
    (
        "temperature",
        "loxone_weather_temperature_celsius",
        "celsius",
        "Air temperature in °C",
        Conversion(0),
    ),
    (
        "perceived_temperature",
        "loxone_weather_perceived_temperature_celsius",
        "celsius",
        "Perceived (felt) temperature in °C",
        Conversion(0),
    ),
    (
        "dew_point",
        "loxone_weather_dew_point_celsius",
        "celsius",
        "Dew point in °C",
        Conversion(0),
    ),
    (
        "relative_humidity",
        "loxone_weather_relative_humidity_ratio",
        "ratio",
        "Relative humidity as a ratio (0-1; the Miniserver sends percent)",
        Conversion(0, divide=100.0),
    ),
    (
        "wind_speed",
        "loxone_weather_wind_speed_meters_per_second",
        "meters_per_second",
        "Wind speed in m/s (the Miniserver sends km/h)",
        Conversion(0, divide=3.6),
    ),
    (
        "wind_direction",
        "loxone_weather_wind_direction_degrees",
        "degrees",
        "Wind direction in degrees",
        Conversion(0),
    ),
    (
        "solar_radiation",
        "loxone_weather_solar_radiation_watts_per_square_meter",
        "watts_per_square_meter",
        "Solar radiation in W/m²",
        Conversion(0),
    ),
    (
        "precipitation",
        "loxone_weather_precipitation_meters",
        "meters",
        "Precipitation in metres (the Miniserver sends millimetres, litres per m²)",
        Conversion(0, divide=1000.0),
    ),
    (
        "barometric_pressure",
        "loxone_weather_barometric_pressure_pascals",
        "pascals",
        "Barometric pressure in pascals (the Miniserver sends hPa)",
        Conversion(0, multiply=100.0),
    ),
)


def build_snapshot(
    miniservers: Sequence[MiniserverFacts], *, include_text: bool, build_info: BuildInfo
) -> Snapshot:
    """Every family of design 3.3 but ``process_*`` and the render duration, in a fixed order."""
    families = [
        up_family(miniservers),
        miniserver_info_family(miniservers),
        control_value_family(miniservers),
        *typed_families(miniservers),
        control_info_family(miniservers),
    ]
    if include_text:
        families.append(control_text_family(miniservers))
    families += [
        global_value_family(miniservers),
        daytimer_family(miniservers),
        *weather_families(miniservers),
        build_info_family(build_info),
        *exporter_families(miniservers),
    ]
    return tuple(families)


def _gauge(
    name: str,
    help_text: str,
    series: Mapping[LabelSet, float] | SeriesParts,
    unit: str = "",
) -> MetricFamily:
    return MetricFamily(name, "gauge", help_text, series, unit=unit)


def _parts(
    miniservers: Sequence[MiniserverFacts], part: Callable[[StoreView], LinesPart]
) -> SeriesParts:
    return SeriesParts(part(ms.store) for ms in miniservers if ms.store is not None)


# --- the Miniserver's own values ----------------------------------------------------------------


def control_value_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_control_value",
        "Current value of a numeric state of a control or subcontrol, from the Miniserver's "
        "value-state events; labels from the structure file LoxAPP3.json (uuid is the "
        "control's uuidAction, state the state's name, name[i] for list states). States whose "
        "unit is known are in the loxone_control_<quantity>_<unit> families instead.",
        _family_parts(miniservers, PLAIN),
    )


def _family_parts(miniservers: Sequence[MiniserverFacts], family: int) -> SeriesParts:
    """The parts of control family ``family`` (``state.FAMILIES``) of every Miniserver that
    has series in it."""
    return SeriesParts(
        part
        for ms in miniservers
        if ms.store is not None and (part := ms.store.values[family]) is not None
    )


def typed_families(miniservers: Sequence[MiniserverFacts]) -> list[MetricFamily]:
    """The control families of a unit (``state._typed``) that hold a value of any Miniserver."""
    families: list[MetricFamily] = []
    for number, family in enumerate(FAMILIES):
        if number == PLAIN:
            continue
        parts = _family_parts(miniservers, number)
        if not len(parts):
            continue
        families.append(
            MetricFamily(
                family.name,
                family.type,
                f"{family.what}: current value of a state of a control or subcontrol whose "
                "format in LoxAPP3.json (details.format, a Meter's actualFormat or "
                "totalFormat) gives this unit, converted to it; labels as loxone_control_value.",
                parts,
                unit=family.unit,
            )
        )
    return families


def control_info_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_control_info",
        "Always 1: one series per exported control or subcontrol, from the structure file "
        "LoxAPP3.json; unit is taken from the control's details.format.",
        _parts(miniservers, lambda store: store.info),
    )


def control_text_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_control_text",
        "Always 1: the current text of a text state of a control (in the text label, cut to "
        "200 characters), from the Miniserver's text-state events.",
        SeriesParts(
            ms.store.texts
            for ms in miniservers
            if ms.store is not None and ms.store.texts is not None
        ),
    )


def global_value_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_global_value",
        "Current value of a numeric global state (globalStates of LoxAPP3.json: "
        "operatingMode, sunrise, sunset, ...), from the Miniserver's value-state events.",
        _parts(miniservers, lambda store: store.globals),
    )


def daytimer_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_daytimer_entries",
        "Number of schedule entries of a daytimer, from the Miniserver's daytimer-state events.",
        _parts(miniservers, lambda store: store.daytimers),
    )


def weather_families(miniservers: Sequence[MiniserverFacts]) -> list[MetricFamily]:
    current: list[tuple[LabelSet, WeatherEntry]] = [
        (ms.labels.miniserver, ms.store.weather)
        for ms in miniservers
        if ms.store is not None and ms.store.weather is not None
    ]
    return [
        _gauge(
            name,
            f"{what} {_FROM_WEATHER}.",
            {labels: convert(getattr(entry, field)) for labels, entry in current},
            unit,
        )
        for field, name, unit, what, convert in WEATHER_FIELDS
    ]


# --- the Miniserver and the exporter ------------------------------------------------------------


def up_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    return _gauge(
        "loxone_up",
        "1 while the exporter's session with the Miniserver is authenticated and streaming "
        "state events, else 0.",
        {ms.labels.miniserver: 1.0 if ms.streaming else 0.0 for ms in miniservers},
    )


def miniserver_info_family(miniservers: Sequence[MiniserverFacts]) -> MetricFamily:
    series: Series = {}
    for ms in miniservers:
        labels = miniserver_info_labels(ms)
        if labels is not None:
            series[labels] = 1.0
    return _gauge(
        "loxone_miniserver_info",
        "Always 1: serial, name and project from msInfo of LoxAPP3.json (serial from "
        "jdev/cfg/apiKey until the structure is loaded), firmware from jdev/cfg/apiKey, "
        "generation from msInfo.miniserverType.",
        series,
    )


def miniserver_info_labels(ms: MiniserverFacts) -> LabelSet | None:
    """The labels of ``loxone_miniserver_info``; ``None`` while nothing is known."""
    info = ms.ms_info
    if info is None and not ms.serial and not ms.firmware:
        return None
    name = project = generation = ""
    serial = ms.serial
    if info is not None:
        serial = info.serial_nr or serial
        name, project = info.ms_name, info.project_name
        if info.miniserver_type is not None:
            generation = GENERATIONS.get(info.miniserver_type, "")
    return (
        *ms.labels.miniserver,
        ("serial", serial),
        ("name", name),
        ("project", project),
        ("firmware", ms.firmware),
        ("generation", generation),
    )


def build_info_family(build_info: BuildInfo) -> MetricFamily:
    labels = (
        ("version", build_info.version),
        ("revision", build_info.revision),
        ("python", build_info.python),
        ("build_date", build_info.build_date),
    )
    return _gauge(
        "loxone_exporter_build_info",
        "Always 1: the exporter's version, source revision, Python version and build date.",
        {labels: 1.0},
    )


def exporter_families(miniservers: Sequence[MiniserverFacts]) -> list[MetricFamily]:
    """The ``loxone_exporter_*`` families of the state owner, in design order."""
    events: Series = {}
    reconnects: Series = {}
    controls: Series = {}
    series: Series = {}
    for ms in miniservers:
        labels = ms.labels
        for kind, table_labels in labels.tables:
            count = ms.events.get(kind, 0)
            if count:
                events[table_labels] = float(count)
        # Every reason from the start, at 0: increase() and rate() then see the first reconnect
        # of each reason too (a counter that appears at 1 looks like no change to them).
        for reason, reason_labels in labels.reasons:
            reconnects[reason_labels] = float(ms.reconnects.get(reason, 0))
        store = ms.store
        if store is not None:
            controls[labels.discovered] = float(store.controls_discovered)
            controls[labels.exported] = float(store.controls_exported)
            series[labels.exported] = float(store.series_exported)
            series[labels.limited] = float(store.series_limited)
    return [
        _counter(
            "loxone_exporter_events_total",
            "State events decoded from the Miniserver's event tables, by table.",
            events,
        ),
        _counter(
            "loxone_exporter_reconnects_total",
            "Sessions with the Miniserver that ended or failed to start, by reason; the "
            "exporter then connects again.",
            reconnects,
        ),
        _counter(
            "loxone_exporter_auth_failures_total",
            "Logins the Miniserver refused (user or password wrong, or the user is locked).",
            {ms.labels.miniserver: float(ms.auth_failures) for ms in miniservers},
        ),
        _counter(
            "loxone_exporter_protocol_errors_total",
            "Malformed frames or replies received from the Miniserver; each restarts the session.",
            {ms.labels.miniserver: float(ms.protocol_errors) for ms in miniservers},
        ),
        _counter(
            "loxone_exporter_unknown_states_total",
            "State events for UUIDs the Miniserver's structure file does not name; they are "
            "ignored (a Miniserver whose structure changed without telling, or a faulty one).",
            {ms.labels.miniserver: float(ms.unknown_states) for ms in miniservers},
        ),
        _per_miniserver(
            "loxone_exporter_last_event_timestamp_seconds",
            "Unix time (the exporter's clock) of the last state event table from the Miniserver.",
            miniservers,
            lambda ms: ms.last_event_unix,
        ),
        _per_miniserver(
            "loxone_exporter_structure_timestamp_seconds",
            "lastModified of the loaded structure file LoxAPP3.json as Unix time; the file "
            "gives the Miniserver's local time without a zone, which is read as UTC.",
            miniservers,
            lambda ms: None if ms.last_modified is None else structure_time(ms.last_modified),
        ),
        _per_miniserver(
            "loxone_exporter_token_expiry_timestamp_seconds",
            "Unix time when the exporter's token for the Miniserver expires, as the "
            "Miniserver announced it when it granted or refreshed the token.",
            miniservers,
            lambda ms: ms.token_expiry_unix,
        ),
        _gauge(
            "loxone_exporter_controls",
            "Controls and subcontrols in the loaded structure file (status=discovered), and "
            "those exported after the [export] exclude filters (status=exported).",
            controls,
        ),
        _gauge(
            "loxone_exporter_series",
            "Control series (loxone_control_value and the families of a unit; "
            "loxone_control_text with include_text) the loaded structure file gives after the "
            "[export] filters (status=exported), and those left out because they are beyond "
            "max_series (status=limited).",
            series,
        ),
    ]


def reload_families(status: ReloadStatus) -> list[MetricFamily]:
    """The two reload gauges (no labels); the web source adds them at render time."""
    return [
        _gauge(
            "loxone_exporter_config_last_reload_successful",
            "1 if the last config reload (SIGHUP or POST /-/reload) succeeded, 0 if the new "
            "config was invalid and the previous one is still running; 1 at start.",
            {(): 1.0 if status.successful else 0.0},
        ),
        _gauge(
            "loxone_exporter_config_last_reload_success_timestamp_seconds",
            "Unix time when the running config was loaded: at start or by the last successful "
            "reload.",
            {(): status.last_success_unix},
            SECONDS,
        ),
    ]


def shard_info_family(index: int, count: int) -> MetricFamily:
    """Which shard this instance is (``[shard]``); the web source adds it at render time."""
    return _gauge(
        "loxone_exporter_shard_info",
        "Always 1: this instance's [shard] index (0 to count - 1) and how many instances share "
        "the config (count); it runs the Miniservers that rendezvous hashing gives its index.",
        {(("index", str(index)), ("count", str(count))): 1.0},
    )


def otlp_exports_family(counts: Mapping[str, int]) -> MetricFamily:
    """``loxone_exporter_otlp_exports_total{result}``; the OTLP pusher adds it when configured."""
    return _counter(
        "loxone_exporter_otlp_exports_total",
        "OTLP metric exports by how they ended: success (the endpoint accepted it), failure "
        "(refused for good, or every retry failed), dropped (still unsent when the next "
        "interval's export replaced it).",
        {(("result", result),): float(count) for result, count in counts.items()},
    )


def _counter(name: str, help_text: str, series: Series) -> MetricFamily:
    return MetricFamily(name, "counter", help_text, series)


def _per_miniserver(
    name: str,
    help_text: str,
    miniservers: Sequence[MiniserverFacts],
    value_of: Callable[[MiniserverFacts], float | None],
) -> MetricFamily:
    series: Series = {}
    for ms in miniservers:
        value = value_of(ms)
        if value is not None:
            series[ms.labels.miniserver] = value
    return _gauge(name, help_text, series, SECONDS if name.endswith(f"_{SECONDS}") else "")


@functools.lru_cache(maxsize=256)
def structure_time(last_modified: str) -> float | None:
    """``lastModified`` (``2025-01-16 10:41:33``) as Unix time, read as UTC; ``None`` if it is
    not such a time. Cached: ``strptime`` is slow and the value changes once per upload."""
    try:
        moment = datetime.datetime.strptime(last_modified, STRUCTURE_TIME_FORMAT)
    except ValueError:
        return None
    return moment.replace(tzinfo=datetime.UTC).timestamp()
