"""Feeding a ``StateOwner`` as a connection task would, and reading what it publishes.

Tables come from the simulator's model and go through the real wire framing and
``MessageReader``, so the owner sees exactly the events a session decodes.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

import pytest
import structure_oracle
from conftest import strict_mode
from prometheus_client.parser import text_string_to_metric_families as parse_text

from loxone_trio_exporter.config import ExportConfig
from loxone_trio_exporter.exposition import Format, LabelSet, MetricFamily, Renderer, Snapshot
from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    MessageReader,
    frame_binary_message,
)
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    StatusChanged,
    StructureReady,
    TablesReceived,
)
from loxone_trio_exporter.runtime._owner import BuildInfo, StateOwner
from loxone_trio_exporter.simulator import SimulatedMiniserver
from loxone_trio_exporter.structure import build_layout

SimMessage = tuple[MessageIdentifier, bytes]
#: A series as a parser reports it: sample name and label pairs.
SeriesKey = tuple[str, frozenset[tuple[str, str]]]


class WallClock:
    """A settable wall clock (seconds since 1970) for timestamps and countdowns."""

    def __init__(self, now: float = 1_750_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def make_owner(
    names: Iterable[str] = ("home",), wall_clock: WallClock | None = None, **export: object
) -> StateOwner:
    # Values as the Miniserver sends them, all in loxone_control_value, unless a test asks for
    # typed families (the reference in test_render_equivalence checks those).
    export.setdefault("typed", False)
    return StateOwner(
        list(names),
        ExportConfig(**export),  # type: ignore[arg-type]
        build_info=BuildInfo(
            version="1.2.3", revision="abc123", python="3.11.9", build_date="2026-01-02"
        ),
        wall_clock=wall_clock or WallClock(),
    )


def structure_ready(name: str, model: SimulatedMiniserver) -> StructureReady:
    return StructureReady(name, build_layout(model.structure), model.last_modified)


def tables(name: str, messages: Iterable[SimMessage]) -> list[TablesReceived]:
    """The simulator's tables framed as on the wire and decoded by a real reader."""
    reader = MessageReader()
    decoded: list[TablesReceived] = []
    for identifier, payload in messages:
        for frame in frame_binary_message(identifier, payload):
            event = reader.receive(frame)
            if event is not None:
                decoded.append(TablesReceived(name, event))  # type: ignore[arg-type]
    return decoded


def feed(owner: StateOwner, messages: Iterable[object], now: float = 0.0) -> None:
    for message in messages:
        owner.apply(message, now)  # type: ignore[arg-type]


def start_streaming(owner: StateOwner, name: str, model: SimulatedMiniserver) -> None:
    """Structure, every table, then STREAMING: what a new session sends."""
    feed(owner, [structure_ready(name, model), *tables(name, model.full_tables())])
    owner.apply(StatusChanged(name, ConnectionState.STREAMING), 0.0)


def family(snapshot: Snapshot, name: str) -> MetricFamily:
    (found,) = [family for family in snapshot if family.name == name]
    return found


def family_names(snapshot: Snapshot) -> list[str]:
    return [family.name for family in snapshot]


def render(snapshot: Snapshot, fmt: Format = Format.TEXT) -> str:
    return Renderer().render(snapshot, fmt).decode()


def parsed_series(text: str) -> dict[SeriesKey, float]:
    """Every sample of a text-format body; fails on a repeated series (the parser allows it)."""
    series: dict[SeriesKey, float] = {}
    for parsed in parse_text(text):
        for sample in parsed.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in series, f"duplicate series {key}"
            series[key] = sample.value
    return series


def expected_control_values(name: str, model: SimulatedMiniserver) -> dict[SeriesKey, float]:
    """Every numeric state once per control that owns it, with the simulator's value: worked
    out from the simulator's JSON document by ``structure_oracle``, not by the exporter."""
    values = model.values_snapshot()["values"]
    return structure_oracle.expected_control_values(model.document, values, name)


def expected_global_values(name: str, model: SimulatedMiniserver) -> dict[SeriesKey, float]:
    values = model.values_snapshot()["values"]
    return structure_oracle.expected_global_values(model.document, values, name)


def rendered_family(owner: StateOwner, name: str) -> dict[SeriesKey, float]:
    """One family of the owner's snapshot as a text-format parser reads it."""
    series = parsed_series(render(owner.snapshot()))
    return {key: value for key, value in series.items() if key[0] == name}


def family_series(metric: MetricFamily) -> dict[LabelSet, float]:
    """A published family's series as a new renderer writes them and a parser reads them."""
    found: dict[LabelSet, float] = {}
    for parsed in parse_text(Renderer().render((metric,)).decode()):
        for sample in parsed.samples:
            found[tuple(sample.labels.items())] = sample.value
    return found


def series_of(owner: StateOwner, name: str) -> dict[LabelSet, float]:
    """One family of the owner's snapshot, rendered and parsed: label set -> value."""
    found: dict[LabelSet, float] = {}
    for parsed in parse_text(render(owner.snapshot())):
        for sample in parsed.samples:
            if sample.name == name:
                labels = tuple(sample.labels.items())
                assert labels not in found, f"duplicate series {labels}"
                found[labels] = sample.value
    return found


def miniserver_of(labels: LabelSet) -> str:
    return dict(labels)["miniserver"]


def require_promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool not on PATH (apt-get install -y prometheus)"
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)
    return promtool


def promtool_check(body: bytes) -> None:
    result = subprocess.run(
        [require_promtool(), "check", "metrics"],
        input=body,
        capture_output=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, (result.stdout, result.stderr)
