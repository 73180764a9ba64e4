"""The push's reader of the text exposition agrees with prometheus_client's parser on whatever
the exporter's renderer writes (any label text, HELP text, NaN and infinities)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from otlp_receiver import require_otlp_extra
from prometheus_client.parser import text_string_to_metric_families

from loxone_trio_exporter.exposition import MetricFamily, Renderer

pytestmark = pytest.mark.usefixtures("otlp_extra")


@pytest.fixture
def otlp_extra() -> None:
    require_otlp_extra()


def mine(text: str) -> list[tuple[str, str, str, list[tuple[tuple[tuple[str, str], ...], float]]]]:
    from loxone_trio_exporter.otlp import parse_exposition  # noqa: PLC0415

    # HELP compared without surrounding blanks: prometheus_client strips them; the push keeps
    # the text as written.
    return [(f.name, f.type, f.help.strip(), f.samples) for f in parse_exposition(text)]


def reference(
    text: str,
) -> list[tuple[str, str, str, list[tuple[tuple[tuple[str, str], ...], float]]]]:
    """prometheus_client's view, named as /metrics names the family (a counter with _total)."""
    return [
        (
            family.name + ("_total" if family.type == "counter" else ""),
            family.type,
            family.documentation.strip(),
            [(tuple(sample.labels.items()), sample.value) for sample in family.samples],
        )
        for family in text_string_to_metric_families(text)
    ]


def same(a: object, b: object) -> bool:
    """Equality in which NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return a == b


_TEXT = st.text(max_size=10)
_FAMILY = st.tuples(
    st.sampled_from(["gauge", "counter"]),
    _TEXT,
    st.dictionaries(
        st.tuples(_TEXT, _TEXT).map(lambda p: (("miniserver", p[0]), ("text", p[1]))),
        st.floats(allow_nan=True, allow_infinity=True),
        max_size=4,
    ),
)


@given(families=st.lists(_FAMILY, max_size=4))
def test_agrees_with_prometheus_client(families: list[tuple[str, str, dict]]) -> None:  # type: ignore[type-arg]
    snapshot = tuple(
        MetricFamily(
            f"family_{index}" + ("_total" if kind == "counter" else ""), kind, help_text, series
        )
        for index, (kind, help_text, series) in enumerate(families)
    )
    text = Renderer().render(snapshot).decode()
    assert same(mine(text), reference(text))


def test_lines_it_does_not_expect_are_skipped() -> None:
    text = (
        "# HELP a Help with \\\\ and \\n.\n"
        "# TYPE a gauge\n"
        'a{x="}{\\"",y="\\\\n"} +Inf\n'
        "a -Inf\n"
        "b_orphan 1\n"  # not of the declared family
        'a{x="1"} not-a-number\n'
        "# a comment\n"
        "#\n"
        "# TYPE c counter\n"
    )
    assert same(
        mine(text),
        [
            (
                "a",
                "gauge",
                "Help with \\ and \n.",
                [((("x", '}{"'), ("y", "\\n")), math.inf), ((), -math.inf)],
            ),
            ("c", "counter", "", []),
        ],
    )
