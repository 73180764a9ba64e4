"""Run the real exporter against the real simulator in a test's nursery, and read /metrics.

What a test expects is derived from the structure document and the simulator's ``/sim/values``
directly (a walk over the JSON), not through the exporter's own catalogue code.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import tomli_w
import trio
from http_client import http_request
from prometheus_client.parser import text_string_to_metric_families

from loxone_trio_exporter.config import (
    Config,
    ExportConfig,
    MiniserverConfig,
    WebConfig,
)
from loxone_trio_exporter.runtime import ConfigSource, LoggingSetup
from loxone_trio_exporter.runtime._connection import Timeouts
from loxone_trio_exporter.simulator import SimulatedServer, SimulatorOptions, serve_simulator
from loxone_trio_exporter.supervisor import ExporterHandle, run_exporter

SeriesKey = tuple[str, frozenset[tuple[str, str]]]


@attrs.frozen
class Exporter:
    handle: ExporterHandle
    port: int
    shutdown: trio.Event

    async def scrape(self, accept: str | None = None) -> str:
        headers = [("Accept", accept)] if accept else []
        response = await http_request(self.port, "/metrics", headers=headers)
        assert response.status == 200, response
        return response.body.decode()

    async def samples(self) -> dict[SeriesKey, float]:
        return parse_unique(await self.scrape())

    def streaming(self, name: str) -> bool:
        return any(view.name == name and view.streaming for view in self.handle.owner.views())

    async def wait_until_streaming(self, *names: str, within: float = 15.0) -> None:
        await poll(lambda: all(self.streaming(name) for name in names), within)


async def poll(condition: Callable[[], bool], within: float = 15.0) -> None:
    """Wait until ``condition()`` holds (real time: real sockets are involved)."""
    with trio.fail_after(within):
        # The condition depends on other tasks and processes, so no Event can signal it.
        while not condition():  # noqa: ASYNC110
            await trio.sleep(0.02)


async def poll_async(condition: Callable[[], Any], within: float = 15.0) -> None:
    with trio.fail_after(within):
        while not await condition():  # noqa: ASYNC110 - an HTTP answer, no Event to wait on
            await trio.sleep(0.05)


async def start_simulator(nursery: trio.Nursery, **overrides: Any) -> SimulatedServer:
    settings: dict[str, Any] = {"port": 0, "controls": 40, "rate": 0.0, "seed": 5}
    handle = await nursery.start(serve_simulator, SimulatorOptions(**(settings | overrides)))
    server: SimulatedServer = handle.servers[0]
    return server


def miniserver(
    server: SimulatedServer, name: str = "home", user: str = "demo", password: str = "demo"
) -> MiniserverConfig:
    return MiniserverConfig(
        name=name, host="127.0.0.1", port=server.port, username=user, password=password, tls="off"
    )


async def start_exporter(
    nursery: trio.Nursery,
    state_dir: Path,
    miniservers: Iterable[MiniserverConfig],
    *,
    timeouts: Timeouts | None = None,
    listen: tuple[str, ...] = ("127.0.0.1:0",),
    web_config_file: str = "",
    **export: Any,
) -> Exporter:
    # These tests compare exported values with the simulator's, as the Miniserver sends them:
    # every value in loxone_control_value unless a test asks for the typed families (checked
    # against the reference in test_render_equivalence and end to end in test_typed_families).
    export.setdefault("typed", False)
    config = Config(
        web=WebConfig(listen=listen, web_config_file=web_config_file),
        export=ExportConfig(**export),
        miniservers=tuple(miniservers),
        state_dir=str(state_dir),
    )
    shutdown = trio.Event()
    handle = await nursery.start(partial(run_exporter, config, shutdown, timeouts=timeouts))
    port = int(handle.urls[0].rstrip("/").rsplit(":", 1)[1])
    return Exporter(handle, port, shutdown)


def write_config(
    path: Path,
    state_dir: Path,
    miniservers: Iterable[MiniserverConfig],
    *,
    listen: tuple[str, ...] = ("127.0.0.1:0",),
    tables: Mapping[str, Mapping[str, Any]] | None = None,
) -> Path:
    """Write an exporter.toml for ``miniservers`` (passwords in clear); ``tables`` adds or
    replaces top-level tables such as ``export``, ``log`` or ``web``."""
    document: dict[str, Any] = {
        "state_dir": str(state_dir),
        "web": {"listen": list(listen)},
        "miniserver": [
            {
                "name": m.name,
                "host": m.host,
                "port": m.port,
                "username": m.username,
                "password": m.password,
                "tls": m.tls,
                **({"tls_ca_file": m.tls_ca_file} if m.tls_ca_file else {}),
                **({"kill_token_on_exit": True} if m.kill_token_on_exit else {}),
                **({"max_series": m.max_series} if m.max_series is not None else {}),
            }
            for m in miniservers
        ],
    }
    for name, table in (tables or {}).items():
        document[name] = {**document.get(name, {}), **table}
    path.write_text(tomli_w.dumps(document), encoding="utf-8")
    return path


async def start_exporter_from_file(
    nursery: trio.Nursery,
    config_file: Path,
    *,
    timeouts: Timeouts | None = None,
    setup_logging: LoggingSetup | None = None,
) -> Exporter:
    """The exporter as ``run exporter.toml`` starts it, reloadable (an empty environment)."""
    source = ConfigSource(config_file, {})
    shutdown = trio.Event()
    handle = await nursery.start(
        partial(
            run_exporter,
            source.load(),
            shutdown,
            source=source,
            setup_logging=setup_logging,
            timeouts=timeouts,
        )
    )
    port = int(handle.urls[0].rstrip("/").rsplit(":", 1)[1])
    return Exporter(handle, port, shutdown)


def parse_unique(text: str) -> dict[SeriesKey, float]:
    """Every sample of a text-format body; fails on a duplicate series (the parser allows it)."""
    samples: dict[SeriesKey, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate series {key}"
            samples[key] = sample.value
    return samples


def select(samples: Mapping[SeriesKey, float], name: str, **labels: str) -> dict[SeriesKey, float]:
    wanted = set(labels.items())
    return {k: v for k, v in samples.items() if k[0] == name and wanted <= k[1]}


def value_of(samples: Mapping[SeriesKey, float], name: str, **labels: str) -> float:
    (found,) = select(samples, name, **labels).values()
    return found


def walk_controls(document: Mapping[str, Any]) -> Iterator[tuple[dict[str, Any], str | None]]:
    """Every control and subcontrol of a LoxAPP3 document, with its parent's uuidAction."""

    def visit(
        control: dict[str, Any], parent: str | None
    ) -> Iterator[tuple[dict[str, Any], str | None]]:
        yield control, parent
        for sub in (control.get("subControls") or {}).values():
            yield from visit(sub, control["uuidAction"])

    for control in (document.get("controls") or {}).values():
        yield from visit(control, None)


def state_refs(states: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(state label, state UUID) for every state; list states get ``name[i]``."""
    for name, ref in states.items():
        if isinstance(ref, list):
            for position, uuid in enumerate(ref):
                yield f"{name}[{position}]", uuid
        elif isinstance(ref, str):
            yield name, ref


def same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-12)
