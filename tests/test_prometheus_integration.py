"""A real Prometheus scrapes the real exporter (against the simulator) with the example config
and alerts: every series arrives, every query of the Grafana dashboard returns data, and a
Miniserver that drops and reboots is seen going down and up, with the alert that goes with it.

Prometheus runs as its own process on loopback (scrapes and rule evaluations every second) and
is always killed at the end; the simulator and the exporter run in the test's trio run.
"""

from __future__ import annotations

import json
import math
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import pytest
import trio
import yaml
from exporter_harness import (
    Exporter,
    SeriesKey,
    miniserver,
    select,
    start_exporter,
    start_simulator,
)
from http_client import http_request
from tools import require_tool

from loxone_trio_exporter.runtime._connection import Timeouts
from loxone_trio_exporter.simulator import Fault, FaultKind
from loxone_trio_exporter.state import FAMILIES

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DASHBOARD = EXAMPLES / "grafana" / "loxone-overview.json"
#: What Grafana puts in for the dashboard's variables (``$__rate_interval`` is at least four
#: scrape intervals; 10 s holds about ten 1 s scrapes).
VARIABLES = {"$__rate_interval": "10s", "$miniserver": "home"}
#: Default timeouts but quick retries, so the Miniserver is back soon after its boot ends.
QUICK_RETRIES = Timeouts(booting_retry=1.0, reconnect_base=0.2, reconnect_cap=1.0)
BOOT_SECONDS = 3.0  # long enough for several 1 s scrapes to see loxone_up == 0


@attrs.frozen
class Prometheus:
    """The HTTP API of a running Prometheus."""

    port: int
    process: trio.Process
    log_file: Path

    def log(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")[-4000:]

    async def get(self, path: str, **params: str) -> Any:
        query = f"?{urlencode(params)}" if params else ""
        response = await http_request(self.port, f"{path}{query}")
        body = response.json()
        assert response.status == 200, (path, params, body)
        assert body["status"] == "success", (path, params, body)
        return body["data"]

    async def query(self, expr: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = (await self.get("/api/v1/query", query=expr))["result"]
        return result

    async def query_range(self, expr: str, start: float) -> list[dict[str, Any]]:
        data = await self.get(
            "/api/v1/query_range", query=expr, start=str(start), end=str(time.time()), step="1"
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    async def wait_until(
        self, condition: Callable[[], Awaitable[bool]], what: str, within: float = 15.0
    ) -> None:
        """Poll ``condition`` (Prometheus is another process: nothing to wait on but its API)."""
        try:
            with trio.fail_after(within):
                while not await condition():
                    assert self.process.returncode is None, f"prometheus exited:\n{self.log()}"
                    await trio.sleep(0.2)
        except trio.TooSlowError:
            pytest.fail(f"not within {within} s: {what}\nprometheus log:\n{self.log()}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape_config(directory: Path, exporter_port: int) -> Path:
    """examples/prometheus.yml and its alerts, at 1 s intervals, aimed at the test's exporter."""
    config = yaml.safe_load((EXAMPLES / "prometheus.yml").read_text(encoding="utf-8"))
    config["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    config["rule_files"] = [str(EXAMPLES / name) for name in config["rule_files"]]
    [job] = config["scrape_configs"]
    job["scrape_interval"] = "1s"
    job["static_configs"] = [{"targets": [f"127.0.0.1:{exporter_port}"]}]
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def prepare(binary: str, directory: Path, exporter_port: int) -> tuple[list[str], int, Path]:
    """The command line of a Prometheus that keeps everything in ``directory``, the port it
    will listen on, and its log file."""
    directory.mkdir()
    port = free_port()
    command = [
        binary,
        f"--config.file={scrape_config(directory, exporter_port)}",
        f"--storage.tsdb.path={directory / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--log.level=warn",
    ]
    return command, port, directory / "prometheus.log"


@asynccontextmanager
async def running_prometheus(
    binary: str, directory: Path, exporter_port: int
) -> AsyncIterator[Prometheus]:
    command, port, log_file = prepare(binary, directory, exporter_port)
    with log_file.open("wb") as log:
        process = await trio.lowlevel.open_process(command, stdout=log, stderr=log)
    try:
        prometheus = Prometheus(port, process, log_file)

        async def ready() -> bool:
            try:
                return (await http_request(port, "/-/ready")).status == 200
            except OSError:
                return False

        await prometheus.wait_until(ready, "Prometheus is ready")
        yield prometheus
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


def dashboard_targets() -> list[tuple[str, str, bool]]:
    """(panel title, query with the variables filled in, instant) of every panel's target."""
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    targets = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: a variable the test does not know"
            targets.append((panel["title"], expr, bool(target.get("instant"))))
    return targets


def has_data(result: list[dict[str, Any]]) -> bool:
    """Some series with a number that is not NaN (instant ``value`` or range ``values``)."""
    return any(
        not math.isnan(float(value))
        for series in result
        for _, value in ([series["value"]] if "value" in series else series["values"])
    )


#: Every control value series, whatever its family (PromQL).
CONTROL_SERIES = '{__name__=~"loxone_control_.+", __name__!~"loxone_control_(info|text)", '
CONTROL_FAMILIES = {family.name for family in FAMILIES}


def control_series(samples: dict[SeriesKey, float]) -> dict[tuple[str, str], dict[str, str]]:
    """(uuid, state) -> labels of every control value series (any family) of ``home``."""
    found: dict[tuple[str, str], dict[str, str]] = {}
    for name, labels in samples:
        label = dict(labels)
        if name in CONTROL_FAMILIES and label["miniserver"] == "home":
            found[label["uuid"], label["state"]] = label
    return found


def value_series(samples: dict[SeriesKey, float]) -> set[tuple[str, str]]:
    """(uuid, state) of every control value series, in whatever family."""
    return set(control_series(samples))


def temperature_uuids(samples: dict[SeriesKey, float]) -> set[str]:
    """What the temperature panel must show, from the exporter's info and its value series."""
    degrees = {
        dict(labels)["uuid"]
        for _, labels in select(samples, "loxone_control_info", control_type="InfoOnlyAnalog")
        if dict(labels)["unit"] in {"°C", "°F"}
    }
    series = control_series(samples)
    sensors = {uuid for uuid, state in series if state == "value"} & degrees
    controllers = {
        uuid
        for (uuid, state), labels in series.items()
        if state == "tempActual" and re.fullmatch(r"IRoomController(V2)?", labels["control_type"])
    }
    return sensors | controllers


@pytest.fixture
def prometheus_binary() -> str:
    """Skips (or fails, strictly) in a plain fixture: a skip inside trio loses its reason."""
    return require_tool("prometheus")


async def test_prometheus_scrapes_everything_and_every_dashboard_query_has_data(
    tmp_path: Path, prometheus_binary: str
) -> None:
    started = time.time()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60, rate=20.0)
            exporter = await start_exporter(
                nursery,
                tmp_path / "state",
                [miniserver(server)],
                timeouts=QUICK_RETRIES,
                typed=True,  # the dashboard reads the typed families
            )
            await exporter.wait_until_streaming("home")
            async with running_prometheus(
                prometheus_binary, tmp_path / "prometheus", exporter.port
            ) as prometheus:
                await _every_series_arrives(prometheus, exporter)
                await _down_and_up_again(prometheus, server)
                await _every_rule_evaluates_and_only_the_down_alert_was_active(prometheus)
                await _every_dashboard_query_returns_data(prometheus, exporter, started)
            nursery.cancel_scope.cancel()
    assert prometheus.process.returncode is not None  # killed, not left running


async def _every_series_arrives(prometheus: Prometheus, exporter: Exporter) -> None:
    async def target_up() -> bool:
        targets = (await prometheus.get("/api/v1/targets", state="active"))["activeTargets"]
        return [target["health"] for target in targets] == ["up"]

    await prometheus.wait_until(target_up, "the exporter is scraped")
    expected = value_series(await exporter.samples())
    assert len(expected) > 100

    async def all_value_series() -> bool:
        result = await prometheus.query(CONTROL_SERIES + 'miniserver="home"}')
        return {(s["metric"]["uuid"], s["metric"]["state"]) for s in result} == expected

    await prometheus.wait_until(all_value_series, f"{len(expected)} control value series")
    [count] = await prometheus.query("count(" + CONTROL_SERIES + 'miniserver="home"})')
    assert int(count["value"][1]) == len(expected)
    [up] = await prometheus.query('min_over_time(loxone_up{miniserver="home"}[1m])')
    assert up["metric"]["job"] == "loxone"
    assert up["value"][1] == "1"  # at every scrape so far


async def _down_and_up_again(prometheus: Prometheus, server: Any) -> None:
    """A dropped connection and a Miniserver that boots: loxone_up 0, then 1, in Prometheus
    (it was 1 at every scrape before: ``_every_series_arrives``)."""
    server.inject(Fault(FaultKind.BOOT, seconds=BOOT_SECONDS))
    server.inject(Fault(FaultKind.DROP))

    async def seen_down() -> bool:
        result = await prometheus.query('min_over_time(loxone_up{miniserver="home"}[1m])')
        return bool(result) and result[0]["value"][1] == "0"

    await prometheus.wait_until(seen_down, "Prometheus sees loxone_up == 0")

    async def seen_up_again() -> bool:
        [up] = await prometheus.query('loxone_up{miniserver="home"}')
        return bool(up["value"][1] == "1")

    await prometheus.wait_until(seen_up_again, "Prometheus sees loxone_up == 1 again")

    async def reasons_counted() -> bool:
        result = await prometheus.query('loxone_exporter_reconnects_total{miniserver="home"}')
        return {s["metric"]["reason"] for s in result} >= {"connection_lost", "booting"}

    await prometheus.wait_until(reasons_counted, "reconnects by reason")


async def _every_rule_evaluates_and_only_the_down_alert_was_active(
    prometheus: Prometheus,
) -> None:
    async def down_alert_pending() -> bool:
        result = await prometheus.query('max_over_time(ALERTS{miniserver="home"}[5m])')
        return bool(result)

    # The Miniserver was down for seconds: LoxoneMiniserverDown was pending (it fires after 5m).
    await prometheus.wait_until(down_alert_pending, "the alert LoxoneMiniserverDown was pending")
    alerts = await prometheus.query("max_over_time(ALERTS[5m])")
    seen = {(a["metric"]["alertname"], a["metric"]["alertstate"]) for a in alerts}
    assert seen == {("LoxoneMiniserverDown", "pending")}
    [active] = alerts
    assert active["metric"]["severity"] == "critical"

    expected = sum(
        len(group["rules"])
        for group in yaml.safe_load((EXAMPLES / "alerts.yml").read_text("utf-8"))["groups"]
    )

    async def rules_evaluated() -> bool:
        groups = (await prometheus.get("/api/v1/rules"))["groups"]
        health = [rule["health"] for group in groups for rule in group["rules"]]
        assert "err" not in health, groups
        return len(health) == expected and set(health) == {"ok"}

    await prometheus.wait_until(rules_evaluated, "every rule evaluated without error")


async def _every_dashboard_query_returns_data(
    prometheus: Prometheus, exporter: Exporter, started: float
) -> None:
    variable = await prometheus.get("/api/v1/label/miniserver/values", **{"match[]": "loxone_up"})
    assert variable == ["home"]  # label_values(loxone_up, miniserver)
    results: dict[str, list[dict[str, Any]]] = {}
    for title, expr, instant in dashboard_targets():

        async def answered(expr: str = expr, instant: bool = instant) -> bool:
            if instant:
                result = await prometheus.query(expr)
            else:
                result = await prometheus.query_range(expr, started)
            results[expr] = result
            return has_data(result)

        # Rates and increases need two samples in their window: a few seconds at most.
        await prometheus.wait_until(answered, f"data for {title!r}: {expr}", within=10.0)

    samples = await exporter.samples()
    # The panels checked below have one query each.
    by_title = {title: results[expr] for title, expr, _ in dashboard_targets()}
    temperatures = {s["metric"]["uuid"] for s in by_title["Temperatures by room"]}
    assert temperatures == temperature_uuids(samples)
    # Both halves of the query contribute: room controllers and analog sensors in degrees.
    kinds = {s["metric"]["control_type"] for s in by_title["Temperatures by room"]}
    assert {"InfoOnlyAnalog", "IRoomControllerV2"} <= kinds
    meters = {s["metric"]["uuid"] for s in by_title["Power by meter"]}
    assert meters == {
        uuid
        for (uuid, state), labels in control_series(samples).items()
        if labels["control_type"] == "Meter" and state == "actual"
    }
    assert meters
    event_rates = {
        s["metric"]["table"]: max(float(value) for _, value in s["values"])
        for s in by_title["State events per second"]
    }
    assert event_rates["value"] > 0  # the simulator changes 20 values a second
    reasons = {s["metric"]["reason"] for s in by_title["Reconnects in the past hour, by reason"]}
    assert reasons >= {"connection_lost", "booting"}
    [info] = by_title["Miniserver"]
    [(_, info_labels)] = select(samples, "loxone_miniserver_info")
    added_by_prometheus = {"__name__", "instance", "job"}
    shown = {k: v for k, v in info["metric"].items() if k not in added_by_prometheus}
    assert shown == dict(info_labels)
