"""Exposition: snapshot -> text format 0.0.4 / OpenMetrics 1.0, checked by prometheus_client's
parsers, against its own ``generate_latest`` and with ``promtool``; caches; negotiation; gzip."""

from __future__ import annotations

import gzip
import math
import shutil
import string
import subprocess
import sys
import textwrap
from collections.abc import Iterator, Mapping

import pytest
from conftest import strict_mode
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics,
)
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from loxone_trio_exporter.exposition import (
    CONTENT_TYPE_OPENMETRICS,
    CONTENT_TYPE_TEXT,
    Format,
    LabelSet,
    MetricFamily,
    Renderer,
    Snapshot,
    choose_format,
    format_value,
    gzip_bytes,
    wants_gzip,
)

TEXT = Format.TEXT
OPENMETRICS = Format.OPENMETRICS
NAN = float("nan")
INF = float("inf")

# ----------------------------------------------------------------------------------- strategies

label_names = st.text(alphabet=string.ascii_letters + string.digits + "_", min_size=1, max_size=8)
label_names = label_names.filter(lambda name: not name[0].isdigit() and not name.startswith("__"))
# Hypothesis' text() leaves out lone surrogates (they cannot be UTF-8): quotes, backslashes,
# newlines, control characters and any other code point are in.
label_values = st.text(max_size=12)
label_sets = st.lists(
    st.tuples(label_names, label_values), max_size=4, unique_by=lambda pair: pair[0]
).map(tuple)
# Parser-friendly family names: none ends in a suffix OpenMetrics gives a meaning to (_total,
# _count, _info...), so each sample is unambiguously its family's.
family_bases = st.text(alphabet=string.ascii_lowercase + string.digits + "_", max_size=8).map(
    lambda middle: f"lx_{middle}_v"
)
# The text parser strips each line, and with it whitespace at the ends of a HELP text: keep
# arbitrary text inside.
help_texts = st.text(max_size=20).map(lambda text: f"<{text}>")
gauge_values = st.floats()  # NaN and both infinities included
counter_values = st.floats(min_value=0.0)  # OpenMetrics: a counter is never negative or NaN


@st.composite
def snapshots(draw: st.DrawFn, sorted_labels: bool = False) -> Snapshot:
    bases = draw(st.lists(family_bases, max_size=4, unique=True))
    families = []
    for base in bases:
        kind = draw(st.sampled_from(["gauge", "counter"]))
        values = gauge_values if kind == "gauge" else counter_values
        keys = label_sets.map(lambda labels: tuple(sorted(labels))) if sorted_labels else label_sets
        series = draw(st.dictionaries(keys, values, max_size=5))
        name = base + "_total" if kind == "counter" else base
        families.append(MetricFamily(name, kind, draw(help_texts), series))
    return tuple(families)


# --------------------------------------------------------------------------------------- helpers


def same_value(parsed: float, expected: float) -> bool:
    return (math.isnan(parsed) and math.isnan(expected)) or parsed == expected


def assert_parsed_equals(text: str, snapshot: Snapshot, fmt: Format) -> None:
    parse = parse_text if fmt is TEXT else parse_openmetrics
    parsed = list(parse(text))
    assert len(parsed) == len(snapshot)
    for got, family in zip(parsed, snapshot, strict=True):
        base = family.name.removesuffix("_total") if family.type == "counter" else family.name
        assert (got.name, got.type, got.documentation) == (base, family.type, family.help)
        assert len(got.samples) == len(family.series)
        for sample, (labels, value) in zip(got.samples, family.series.items(), strict=True):
            assert sample.name == family.name
            assert sample.labels == dict(labels)
            assert same_value(sample.value, value), (sample.value, value)
            assert sample.timestamp is None


class SnapshotCollector(Collector):
    """The same families through prometheus_client's own exposition code."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        for family in self.snapshot:
            base = family.name.removesuffix("_total") if family.type == "counter" else family.name
            metric = Metric(base, family.help, family.type)
            for labels, value in family.series.items():
                # The renderer writes -0.0 as 0.0 (the one deliberate difference).
                metric.add_sample(family.name, dict(labels), value + 0.0)
            yield metric


def registry_of(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return registry


def gauge(name: str, series: Mapping[LabelSet, float], help_text: str = "help") -> MetricFamily:
    return MetricFamily(name, "gauge", help_text, series)


def labels(**pairs: str) -> LabelSet:
    return tuple(pairs.items())


def fresh(snapshot: Snapshot, fmt: Format = TEXT) -> bytes:
    return Renderer().render(snapshot, fmt)


# ---------------------------------------------------------------------------------------- model


def test_importing_exposition_imports_no_framework_and_no_prometheus_client() -> None:
    # A fresh interpreter: this test process has imported trio and prometheus_client already.
    forbidden = ("trio", "quart", "quart_trio", "hypercorn", "asyncio", "prometheus_client")
    program = textwrap.dedent(
        f"""
        import sys
        import loxone_trio_exporter.exposition
        print(",".join(sorted(m for m in {forbidden!r} if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_a_family_checks_its_name_and_type() -> None:
    assert gauge("loxone_up", {}).type == "gauge"
    with pytest.raises(ValueError, match="invalid metric name"):
        gauge("loxone-up", {})
    with pytest.raises(ValueError, match="invalid metric name"):
        gauge("", {})
    with pytest.raises(ValueError, match="must be 'gauge' or 'counter'"):
        MetricFamily("loxone_up", "histogram", "", {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must end in '_total'"):
        MetricFamily("loxone_exporter_events", "counter", "", {})
    with pytest.raises(ValueError, match="must end in '_total'"):
        MetricFamily("_total", "counter", "", {})


def test_a_label_name_is_checked_when_its_series_is_first_written() -> None:
    renderer = Renderer()
    for bad in ("control-type", "1st", "__name__", ""):
        with pytest.raises(ValueError, match="invalid label name"):
            renderer.render((gauge("loxone_up", {((bad, "x"),): 1.0}),))


def test_a_failed_render_leaves_no_half_updated_cache() -> None:
    renderer = Renderer()
    good = big_family(100)
    renderer.render((good,))
    keys = list(good.series)
    broken = {**good.series, keys[10]: 2.0, keys[20]: "not a number"}
    with pytest.raises(TypeError):
        renderer.render((gauge(good.name, broken),))  # type: ignore[arg-type]
    assert renderer.render((good,)) == fresh((good,))
    # Another change in the block of the failed one: the line of keys[10] must not come back.
    changed = (gauge(good.name, {**good.series, keys[11]: 3.0}),)
    assert renderer.render(changed) == fresh(changed)


# --------------------------------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, b"0.0"),
        (-0.0, b"0.0"),  # the deliberate difference from prometheus_client ("-0.0")
        (1, b"1.0"),
        (True, b"1.0"),
        (22.5, b"22.5"),
        (-3.25, b"-3.25"),
        (999_999.5, b"999999.5"),
        (1e6, b"1e+06"),
        (1_234_567.0, b"1.234567e+06"),
        (10_000_000.5, b"1.00000005e+07"),
        (-1_234_567.0, b"-1234567.0"),
        (9_999_999_999_999_998.0, b"9.999999999999998e+15"),
        (1e16, b"1e+16"),
        (1e20, b"1e+20"),
        (-1e20, b"-1e+20"),
        (5e-324, b"5e-324"),
        (INF, b"+Inf"),
        (-INF, b"-Inf"),
        (NAN, b"NaN"),
    ],
)
def test_values_are_written_as_prometheus_client_writes_them(value: float, text: bytes) -> None:
    assert format_value(value) == text


@given(st.floats() | st.integers(min_value=-(2**60), max_value=2**60))
def test_format_value_matches_float_to_go_string(value: float) -> None:
    assert format_value(value).decode() == floatToGoString(value + 0.0)


# --------------------------------------------------------------------------------- round trips


@given(snapshots())
def test_text_format_parses_back_to_the_snapshot(snapshot: Snapshot) -> None:
    assert_parsed_equals(fresh(snapshot, TEXT).decode("utf-8"), snapshot, TEXT)


@given(snapshots())
def test_openmetrics_parses_back_to_the_snapshot(snapshot: Snapshot) -> None:
    body = fresh(snapshot, OPENMETRICS)
    assert body.endswith(b"# EOF\n")
    assert_parsed_equals(body.decode("utf-8"), snapshot, OPENMETRICS)


@given(snapshots(sorted_labels=True))
def test_text_format_is_byte_identical_to_generate_latest(snapshot: Snapshot) -> None:
    # prometheus_client sorts labels by name; the renderer keeps the snapshot's order.
    assert fresh(snapshot, TEXT) == generate_latest(registry_of(snapshot))


@given(snapshots(sorted_labels=True))
def test_openmetrics_is_byte_identical_to_prometheus_client(snapshot: Snapshot) -> None:
    assert fresh(snapshot, OPENMETRICS) == generate_latest_openmetrics(registry_of(snapshot))


def test_counters_are_declared_per_format() -> None:
    events = MetricFamily(
        "loxone_exporter_events_total",
        "counter",
        "Decoded state events.",
        {labels(miniserver="home", table="value"): 12.0},
    )
    sample = b'loxone_exporter_events_total{miniserver="home",table="value"} 12.0\n'
    assert fresh((events,), TEXT) == (
        b"# HELP loxone_exporter_events_total Decoded state events.\n"
        b"# TYPE loxone_exporter_events_total counter\n" + sample
    )
    assert fresh((events,), OPENMETRICS) == (
        b"# HELP loxone_exporter_events Decoded state events.\n"
        b"# TYPE loxone_exporter_events counter\n" + sample + b"# EOF\n"
    )


def test_escaping_of_label_values_and_help() -> None:
    family = gauge(
        "loxone_control_info",
        {labels(room='Bad "OG"\\2\nlinks', unit="°C", control="Küche 🌡"): 1.0},
        help_text='Info "quoted" \\ back\nslash',
    )
    sample = (
        'loxone_control_info{room="Bad \\"OG\\"\\\\2\\nlinks",unit="°C",control="Küche 🌡"} 1.0\n'
    )
    assert fresh((family,), TEXT).decode() == (
        '# HELP loxone_control_info Info "quoted" \\\\ back\\nslash\n'
        "# TYPE loxone_control_info gauge\n" + sample
    )
    assert fresh((family,), OPENMETRICS).decode() == (
        '# HELP loxone_control_info Info \\"quoted\\" \\\\ back\\nslash\n'
        "# TYPE loxone_control_info gauge\n" + sample + "# EOF\n"
    )


def test_empty_families_and_empty_label_sets() -> None:
    snapshot = (
        gauge("loxone_up", {}),
        gauge("loxone_exporter_render_duration_seconds", {(): 0.004}),
    )
    assert fresh(snapshot) == (
        b"# HELP loxone_up help\n# TYPE loxone_up gauge\n"
        b"# HELP loxone_exporter_render_duration_seconds help\n"
        b"# TYPE loxone_exporter_render_duration_seconds gauge\n"
        b"loxone_exporter_render_duration_seconds 0.004\n"
    )
    assert fresh((), TEXT) == b""
    assert fresh((), OPENMETRICS) == b"# EOF\n"


def test_lone_surrogates_become_question_marks_instead_of_failing() -> None:
    family = gauge("loxone_control_value", {labels(control="a\udc80b"): 1.0}, "x\ud800")
    body = fresh((family,))
    assert b'control="a?b"' in body
    assert b"# HELP loxone_control_value x?\n" in body


# ---------------------------------------------------------------------------------------- cache

HOME = labels(miniserver="home", uuid="0f1e", control="Licht", room="Küche", state="active")
OFFICE = labels(miniserver="office", uuid="0a2b", control="Temp", room="Büro", state="value")


def big_family(count: int, value: float = 1.0) -> MetricFamily:
    return gauge(
        "loxone_control_value",
        {labels(miniserver="home", uuid=f"{i:08x}", state="value"): value for i in range(count)},
    )


def test_a_second_render_formats_only_changed_values() -> None:
    renderer = Renderer()
    first = big_family(100)
    renderer.render((first,))
    assert renderer.statistics().lines_formatted == 100
    assert renderer.render((first,)) == fresh((first,))
    assert renderer.statistics().lines_formatted == 0

    series = dict(first.series)
    changed = next(iter(series))
    series[changed] = 2.5
    second = gauge(first.name, series)
    assert renderer.render((second,)) == fresh((second,))
    assert renderer.statistics().lines_formatted == 1
    assert b'uuid="00000000",state="value"} 2.5\n' in renderer.render((second,))

    for key in list(series)[5:7]:  # two in one block
        series[key] = -1.0
    third = gauge(first.name, series)
    assert renderer.render((third,)) == fresh((third,))
    assert renderer.statistics().lines_formatted == 2


def test_equal_values_in_new_objects_are_not_formatted_again() -> None:
    renderer = Renderer()
    steady = dict(big_family(20).series)  # few changes among many series: patched one by one

    def snapshot(home: float, office: float) -> Snapshot:
        return (gauge("loxone_control_value", {**steady, HOME: home, OFFICE: office}),)

    renderer.render(snapshot(0.0, float("nan")))
    # An equal zero keeps its line; a NaN is only ever equal to itself (the same object).
    same = snapshot(-0.0, float("nan"))
    assert renderer.render(same) == fresh(same)
    assert renderer.statistics().lines_formatted == 1
    # The same NaN object is unchanged, even while other values change.
    nan = same[0].series[OFFICE]
    for value in (1.0, 2.0):
        changed = snapshot(value, nan)
        assert renderer.render(changed) == fresh(changed)
        assert renderer.statistics().lines_formatted == 1


def test_a_family_where_many_values_changed_is_written_anew() -> None:
    renderer = Renderer()
    renderer.render((big_family(100),))
    series = dict(big_family(100).series)
    for key in list(series)[::2]:
        series[key] = 7.5
    changed = (gauge("loxone_control_value", series),)
    assert renderer.render(changed) == fresh(changed)
    assert renderer.statistics().lines_formatted == 100


def test_changes_across_blocks_are_found_and_a_quarter_is_the_limit() -> None:
    renderer = Renderer()
    renderer.render((big_family(100),))  # blocks of 32: 0-31, 32-63, 64-95 and 96-99
    keys = list(big_family(100).series)
    for changed, formatted in (([0, 31, 32, 70, 99], 5), (range(25), 25), (range(26), 100)):
        series = dict(big_family(100).series)
        for index in changed:
            series[keys[index]] = 3.25
        snapshot = (gauge("loxone_control_value", series),)
        assert renderer.render(snapshot) == fresh(snapshot)
        # More than a quarter changed: every line is written anew.
        assert renderer.statistics().lines_formatted == formatted
        renderer.render((big_family(100),))


def test_vanished_series_and_families_leave_the_cache() -> None:
    renderer = Renderer()
    info = gauge("loxone_up", {labels(miniserver="home"): 1.0})
    renderer.render((big_family(50), info))
    assert renderer.statistics().cached_series == 51
    assert renderer.statistics().cached_families == 2

    fewer = big_family(20)
    assert renderer.render((fewer,)) == fresh((fewer,))
    assert renderer.statistics().cached_series == 20
    assert renderer.statistics().cached_families == 1
    assert renderer.statistics().lines_formatted == 0


def test_added_reordered_and_appended_series() -> None:
    renderer = Renderer()
    steps = [
        {HOME: 1.0},
        {HOME: 1.0, OFFICE: 2.0},  # appended: the old series keeps its line
        {OFFICE: 2.0, HOME: 1.0},  # reordered
        {OFFICE: 3.0, HOME: 1.0, labels(miniserver="x"): 0.0},  # appended and changed
        {labels(miniserver="x"): 0.0, OFFICE: 3.0},  # vanished and reordered
    ]
    formatted = [1, 1, 0, 2, 0]
    for series, count in zip(steps, formatted, strict=True):
        snapshot = (gauge("loxone_control_value", series),)
        assert renderer.render(snapshot) == fresh(snapshot)
        assert renderer.statistics().lines_formatted == count
        assert renderer.statistics().cached_series == len(series)


def test_one_renderer_serves_both_formats() -> None:
    renderer = Renderer()
    counter = MetricFamily("loxone_exporter_events_total", "counter", "h", {HOME: 1.0})
    snapshot = (counter, big_family(40))
    for fmt in (TEXT, OPENMETRICS, TEXT, OPENMETRICS):
        assert renderer.render(snapshot, fmt) == fresh(snapshot, fmt)
    assert renderer.statistics().lines_formatted == 0


def test_changed_help_or_type_is_written() -> None:
    renderer = Renderer()
    renderer.render((gauge("loxone_up", {HOME: 1.0}, "old"),))
    renewed = gauge("loxone_up", {HOME: 1.0}, "new")
    assert renderer.render((renewed,)) == fresh((renewed,))


def test_many_distinct_values_keep_the_value_memo_bounded() -> None:
    renderer = Renderer()
    for offset in (0.5, 0.25):
        family = gauge(
            "loxone_control_value",
            {labels(uuid=str(i)): i + offset for i in range(9000)},
        )
        assert renderer.render((family,)) == fresh((family,))


def test_duplicates_do_not_crash() -> None:
    renderer = Renderer()
    swapped = tuple(reversed(HOME))  # the same labels in another order: another series
    twice = (
        gauge("loxone_up", {HOME: 1.0, swapped: 2.0}),
        gauge("loxone_up", {HOME: 3.0}),
    )
    for _ in range(3):
        body = renderer.render(twice)
        assert body == fresh(twice)
    assert body.count(b"# TYPE loxone_up gauge\n") == 2
    assert body.count(b"\nloxone_up{") == 3


@st.composite
def snapshot_sequences(draw: st.DrawFn) -> list[Snapshot]:
    """Snapshots drawn from one pool of series and values, so consecutive ones overlap; some
    differ from the previous one in a few values only."""
    pool = draw(st.lists(label_sets, min_size=1, max_size=60, unique=True))
    values = st.sampled_from([0.0, -0.0, 1.0, 22.5, NAN, INF, 1e7]) | gauge_values
    sequence: list[Snapshot] = []
    for _ in range(draw(st.integers(min_value=2, max_value=6))):
        families = []
        if sequence and draw(st.booleans()):
            for family in sequence[-1]:
                series = dict(family.series)
                if series:
                    for key in draw(st.lists(st.sampled_from(list(series)), max_size=3)):
                        series[key] = draw(values)
                families.append(gauge(family.name, series))
        else:
            for name in draw(st.lists(st.sampled_from(["lx_a", "lx_b", "lx_c"]), unique=True)):
                keys = draw(st.lists(st.sampled_from(pool), unique=True))
                families.append(gauge(name, {key: draw(values) for key in keys}))
        sequence.append(tuple(families))
    return sequence


@given(snapshot_sequences(), st.sampled_from(Format))
def test_a_long_lived_renderer_writes_what_a_new_one_writes(
    sequence: list[Snapshot], fmt: Format
) -> None:
    renderer = Renderer()
    for snapshot in sequence:
        assert renderer.render(snapshot, fmt) == fresh(snapshot, fmt)
        statistics = renderer.statistics()
        assert statistics.cached_families == len(snapshot)
        assert statistics.cached_series == sum(len(family.series) for family in snapshot)


# ------------------------------------------------------------------------------------- promtool


def design_snapshot() -> Snapshot:
    """Families of design 3.3 with awkward label values."""
    value_labels = labels(
        miniserver="home",
        uuid="0f1e2d3c-0123-4567-ffffaaaabbbbcccc",
        control='Licht "Bad"\\OG',
        control_type="Switch",
        room="Wohnzimmer\nSüd",
        category="Beleuchtung",
        state="active",
    )
    return (
        gauge(
            "loxone_control_value", {value_labels: 1.0, (*value_labels[:-1], ("state", "x")): NAN}
        ),
        gauge("loxone_control_info", {(*value_labels[:-1], ("parent", ""), ("unit", "°C")): 1.0}),
        gauge("loxone_up", {labels(miniserver="home"): 1.0, labels(miniserver="office"): 0.0}),
        gauge("loxone_weather_temperature_celsius", {}),
        MetricFamily(
            "loxone_exporter_events_total",
            "counter",
            "Decoded state events, by table.",
            {labels(miniserver="home", table="value"): 1e20},
        ),
        gauge("loxone_exporter_render_duration_seconds", {(): 0.0123}, 'Time of the "previous"\\'),
    )


def test_promtool_accepts_the_text_format() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool not on PATH (apt-get install -y prometheus)"
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)
    body = fresh(design_snapshot())
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, (result.stdout, result.stderr)


def test_design_snapshot_round_trips_in_both_formats() -> None:
    snapshot = design_snapshot()
    assert_parsed_equals(fresh(snapshot, TEXT).decode(), snapshot, TEXT)
    assert_parsed_equals(fresh(snapshot, OPENMETRICS).decode(), snapshot, OPENMETRICS)


# ---------------------------------------------------------------------------------- negotiation

PROMETHEUS_2 = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;"
    "q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)
PROMETHEUS_3 = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,"
    "application/openmetrics-text;version=0.0.1;q=0.4,"
    "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.3,text/plain;version=0.0.4;q=0.2,*/*;q=0.1"
)
PROMETHEUS_3_PROTOBUF_FIRST = (
    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;"
    "q=0.6," + PROMETHEUS_3
)
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8"


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, TEXT),
        ("", TEXT),
        ("*/*", TEXT),
        ("text/plain", TEXT),
        ("text/plain; version=0.0.4", TEXT),
        ("text/*", TEXT),
        (BROWSER, TEXT),
        ("garbage", TEXT),
        (",,;;,=", TEXT),
        ("application/json", TEXT),
        (PROMETHEUS_2, OPENMETRICS),
        (PROMETHEUS_3, OPENMETRICS),
        (PROMETHEUS_3_PROTOBUF_FIRST, OPENMETRICS),
        ("application/openmetrics-text", OPENMETRICS),
        ("application/openmetrics-text; version=1.0.0", OPENMETRICS),
        ("application/openmetrics-text; version=0.0.1", OPENMETRICS),
        ('application/openmetrics-text; version="1.0.0"; charset=utf-8', OPENMETRICS),
        ("APPLICATION/OpenMetrics-Text; Version=1.0.0", OPENMETRICS),
        ("application/openmetrics-text; version=2.0.0", TEXT),  # a version it cannot write
        ("application/openmetrics-text; version=2.0.0, text/plain;q=0.1", TEXT),
        (
            "application/openmetrics-text;version=2.0.0,application/openmetrics-text;q=0.2",
            OPENMETRICS,
        ),
        ("application/openmetrics-text;q=0", TEXT),
        ("application/openmetrics-text;q=0.0, */*", TEXT),
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", TEXT),
        ("text/plain;q=0.5, application/openmetrics-text;q=0.9", OPENMETRICS),
        ("*/*;q=1, application/openmetrics-text;q=0.5", TEXT),
        ("text/plain, application/openmetrics-text", OPENMETRICS),  # a tie: the specific one
        ("application/openmetrics-text, text/plain", OPENMETRICS),
        ("text/plain;q=0, application/openmetrics-text;q=0.001", OPENMETRICS),
        ("application/openmetrics-text;q=abc, text/plain", TEXT),  # a broken q drops the element
        ("application/openmetrics-text;q=2", TEXT),
        ("application/openmetrics-text;q=nan", TEXT),
        ("application/openmetrics-text;q=-1", TEXT),
        ("application/openmetrics-text ; q = 0.7 , text/plain ; q = 0.6", OPENMETRICS),
        ("application/openmetrics-text;;=x;version=1.0.0", OPENMETRICS),  # empty parameters
    ],
)
def test_choose_format(accept: str | None, expected: Format) -> None:
    assert choose_format(accept) is expected


def test_content_types_are_exact() -> None:
    assert CONTENT_TYPE_TEXT == "text/plain; version=0.0.4; charset=utf-8"
    assert CONTENT_TYPE_OPENMETRICS == "application/openmetrics-text; version=1.0.0; charset=utf-8"
    assert TEXT.content_type == CONTENT_TYPE_TEXT
    assert OPENMETRICS.content_type == CONTENT_TYPE_OPENMETRICS


@pytest.mark.parametrize(
    ("accept_encoding", "expected"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("deflate, br", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000", False),
        ("gzip; q=0.5", True),
        ("*", True),
        ("*;q=0", False),
        ("gzip;q=0, *", False),  # explicitly refused, whatever * says
        ("*, gzip;q=0", False),
        ("identity;q=1, gzip;q=0.5", False),  # identity preferred
        ("identity;q=0.5, gzip;q=0.5", True),
        ("identity;q=0, gzip", True),
        ("gzip;q=bogus", False),
        ("gzip;q=0.2, gzip;q=0.9, identity;q=0.5", True),
    ],
)
def test_wants_gzip(accept_encoding: str | None, expected: bool) -> None:
    assert wants_gzip(accept_encoding) is expected


@given(st.binary(max_size=5000))
def test_gzip_round_trip(data: bytes) -> None:
    compressed = gzip_bytes(data)
    assert compressed[:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed) == data
    assert gzip_bytes(data) == compressed  # no timestamp in the header: deterministic


def test_gzip_of_a_real_exposition() -> None:
    body = Renderer().render((big_family(2000),))
    compressed = gzip_bytes(body)
    assert gzip.decompress(compressed) == body
    assert len(compressed) < len(body) / 5
    assert gzip.decompress(gzip_bytes(body, 6)) == body
