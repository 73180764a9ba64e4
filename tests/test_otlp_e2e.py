"""OTLP push end to end: simulator -> exporter -> OTLP/HTTP -> a receiver that decodes every push
with the official ``opentelemetry-proto`` classes. Real sockets, so real time (bounded polls)."""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import pytest
import trio
from exporter_harness import (
    miniserver,
    parse_unique,
    poll,
    same_value,
    start_simulator,
    value_of,
)
from http_client import http_request
from otlp_receiver import Push, Receiver, require_otlp_extra
from structure_oracle import expected_control_values

from loxone_trio_exporter.config import Config, ExportConfig, OtlpConfig, WebConfig
from loxone_trio_exporter.simulator import SimulatedServer
from loxone_trio_exporter.supervisor import run_exporter

pytestmark = pytest.mark.usefixtures("otlp_extra")

SECRET = "Bearer e2e-Otlp-Geheimnis-42"


@pytest.fixture
def otlp_extra() -> None:
    require_otlp_extra()


async def start_receiver(nursery: trio.Nursery, receiver: Receiver) -> int:
    listeners = await nursery.start(partial(trio.serve_tcp, receiver.handle, 0, host="127.0.0.1"))
    port: int = listeners[0].socket.getsockname()[1]
    return port


async def start(
    nursery: trio.Nursery, tmp_path: Path, server: SimulatedServer, otlp: OtlpConfig
) -> int:
    """The exporter for ``server`` with ``otlp``; its web port."""
    config = Config(
        web=WebConfig(listen=("127.0.0.1:0",)),
        miniservers=(miniserver(server),),
        # The simulator's values as sent: all in loxone_control_value (no unit conversion).
        export=ExportConfig(typed=False),
        otlp=otlp,
        state_dir=str(tmp_path),
    )
    handle = await nursery.start(partial(run_exporter, config, trio.Event()))
    return int(handle.urls[0].rstrip("/").rsplit(":", 1)[1])


def control_values(push: Push) -> dict[tuple[str, str], float]:
    return {
        (dict(key)["uuid"], dict(key)["state"]): value
        for key, value in push.points("loxone_control_value").items()
        if dict(key)["miniserver"] == "home"
    }


async def test_every_control_value_arrives_with_the_simulators_value(tmp_path: Path) -> None:
    receiver = Receiver()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60)
            port = await start_receiver(nursery, receiver)
            otlp = OtlpConfig(
                endpoint=f"http://127.0.0.1:{port}",
                interval_seconds=0.2,
                headers={"Authorization": SECRET},
                service_instance_id="e2e-box",
            )
            web_port = await start(nursery, tmp_path, server, otlp)
            response = await http_request(server.port, "/sim/values")
            values = response.json()["values"]
            expected = {
                (dict(labels)["uuid"], dict(labels)["state"]): value
                for (_, labels), value in expected_control_values(
                    server.model.document, values, "home"
                ).items()
            }

            def complete() -> bool:
                return bool(receiver.pushes) and len(control_values(receiver.pushes[-1])) == len(
                    expected
                )

            await poll(complete)
            push = receiver.pushes[-1]
            metrics = (await http_request(web_port, "/metrics")).body.decode()
            nursery.cancel_scope.cancel()
    got = control_values(push)
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert same_value(got[key], value), (key, got[key], value)
    assert push.target == "/v1/metrics"
    assert push.headers["authorization"] == SECRET
    assert push.resource() == {
        "service.name": "loxone-trio-exporter",
        "service.instance.id": "e2e-box",
        "service.version": push.resource()["service.version"],
    }
    (up,) = push.points("loxone_up").values()
    assert up == 1.0
    # The same families as /metrics, the push counter among them.
    scraped = {name for name, _ in parse_unique(metrics)}
    pushed = {metric.name for metric in push.metrics()}
    assert pushed <= scraped
    assert {"loxone_control_value", "loxone_control_info", "loxone_exporter_events_total"} <= pushed
    assert "loxone_exporter_otlp_exports_total" in pushed
    samples = parse_unique(metrics)
    assert value_of(samples, "loxone_exporter_otlp_exports_total", result="success") >= 1
    assert SECRET not in metrics


async def test_a_down_endpoint_recovers_and_the_secret_shows_nowhere(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver(status=503)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            port = await start_receiver(nursery, receiver)
            otlp = OtlpConfig(
                endpoint=f"http://127.0.0.1:{port}/v1/metrics",
                interval_seconds=0.3,
                headers={"Authorization": SECRET},
            )
            web_port = await start(nursery, tmp_path, server, otlp)
            await poll(lambda: len(receiver.pushes) >= 3)
            receiver.status = 200
            seen = len(receiver.pushes)
            await poll(lambda: any("works again" in r.message for r in caplog.records))
            await poll(lambda: len(receiver.pushes) >= seen + 2)
            metrics = (await http_request(web_port, "/metrics")).body.decode()
            landing = (await http_request(web_port, "/")).body.decode()
            nursery.cancel_scope.cancel()
    otlp_records = [r for r in caplog.records if r.name.startswith("loxone_trio_exporter.otlp")]
    failed = [r for r in otlp_records if "failed" in r.message]
    recovered = [r for r in otlp_records if "works again" in r.message]
    assert len(failed) == 1  # one line for the whole outage, not one per try
    assert "HTTP status 503" in failed[0].message
    assert len(recovered) == 1
    samples = parse_unique(metrics)
    # Backoff (1 s or more) outlasts the 0.3 s interval: the next export replaces each unsent one.
    assert value_of(samples, "loxone_exporter_otlp_exports_total", result="dropped") >= 1
    assert value_of(samples, "loxone_exporter_otlp_exports_total", result="success") >= 1
    assert all(push.headers["authorization"] == SECRET for push in receiver.pushes)
    for text in (caplog.text, metrics, landing):
        assert SECRET not in text
        assert SECRET.split()[1] not in text
