"""The OTLP pusher on virtual time, against a receiver that decodes every push with the official
``opentelemetry-proto`` classes (over memory streams: no sockets, so the autojump clock serves).

What it pushes here is a fixed text exposition; ``test_otlp_e2e`` pushes a real exporter's.
"""

from __future__ import annotations

import itertools
import logging
import math
import random
import ssl
from functools import partial
from pathlib import Path

import pytest
import trio
import trio.testing
from otlp_receiver import Receiver, require_otlp_extra
from tls_material import issue, make_ca

pytestmark = pytest.mark.usefixtures("otlp_extra")

SECRET = "Bearer otlp-S3cret-t0ken"
TEXT = b"""\
# HELP loxone_up 1 while streaming.
# TYPE loxone_up gauge
loxone_up{miniserver="home"} 1.0
loxone_up{miniserver="away \\"x\\" \\\\ y"} 0.0
# HELP loxone_control_value A value.
# TYPE loxone_control_value gauge
loxone_control_value{miniserver="home",uuid="0f",state="value"} NaN
loxone_control_value{miniserver="home",uuid="10",state="value"} -2.5e+300
# HELP loxone_exporter_events_total Events.
# TYPE loxone_exporter_events_total counter
loxone_exporter_events_total{miniserver="home",table="value"} 42.0
# HELP loxone_exporter_render_duration_seconds Nothing yet.
# TYPE loxone_exporter_render_duration_seconds gauge
"""


@pytest.fixture
def otlp_extra() -> None:
    require_otlp_extra()


def settings(**overrides: object) -> object:
    from loxone_trio_exporter.otlp import Endpoint, PushSettings  # noqa: PLC0415

    values: dict[str, object] = {
        "endpoint": Endpoint.from_url("http://collector.example:4318"),
        "headers": {"Authorization": SECRET},
        "interval_seconds": 60.0,
        "timeout_seconds": 10.0,
        "gzip": True,
        "resource": {"service.name": "loxone-trio-exporter", "service.instance.id": "box-1"},
        "version": "9.9.9",
    }
    return PushSettings(**(values | overrides))  # type: ignore[arg-type]


async def collect() -> bytes:
    return TEXT


def pusher(  # type: ignore[no-untyped-def]
    receiver: Receiver, nursery: trio.Nursery, down: list[bool] | None = None, **kw: object
):
    from loxone_trio_exporter.otlp import OtlpPusher  # noqa: PLC0415

    return OtlpPusher(
        settings(**kw),  # type: ignore[arg-type]
        collect,
        open_stream=receiver.opener(nursery, down=down),
        random_source=random.Random(7),  # noqa: S311 - seeded jitter, not secrets
        encode_in_thread=False,  # the autojump clock would jump while a worker thread runs
    )


async def test_one_push_every_interval_with_the_series_decoded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery)
        started = trio.current_time()
        await nursery.start(partial(push.run))
        pushes = await receiver.wait_for_pushes(3)
        await trio.sleep(1)  # the third answer is read
        nursery.cancel_scope.cancel()
    assert [p.received_at - started for p in pushes] == [60.0, 120.0, 180.0]
    first = pushes[0]
    assert first.target == "/v1/metrics"
    assert first.headers["authorization"] == SECRET
    assert first.headers["content-encoding"] == "gzip"
    assert first.resource() == {
        "service.name": "loxone-trio-exporter",
        "service.instance.id": "box-1",
    }
    up = first.points("loxone_up")
    assert up == {
        frozenset({("miniserver", "home")}): 1.0,
        frozenset({("miniserver", 'away "x" \\ y')}): 0.0,
    }
    assert first.metric("loxone_up").WhichOneof("data") == "gauge"
    values = first.points("loxone_control_value")
    nan_key = frozenset({("miniserver", "home"), ("uuid", "0f"), ("state", "value")})
    assert math.isnan(values[nan_key])
    assert (
        values[frozenset({("miniserver", "home"), ("uuid", "10"), ("state", "value")})] == -2.5e300
    )
    events = first.metric("loxone_exporter_events_total")
    assert events.WhichOneof("data") == "sum"
    assert events.sum.is_monotonic
    assert events.sum.aggregation_temporality == 2  # AGGREGATION_TEMPORALITY_CUMULATIVE
    (point,) = events.sum.data_points
    assert point.as_double == 42.0
    assert 0 < point.start_time_unix_nano <= point.time_unix_nano
    # Every push of one run has the same start time: the counters are cumulative from it.
    starts = {
        p.metric("loxone_exporter_events_total").sum.data_points[0].start_time_unix_nano
        for p in pushes
    }
    assert starts == {point.start_time_unix_nano}
    # A family without series has no points, so no metric.
    assert "loxone_exporter_render_duration_seconds" not in {m.name for m in first.metrics()}
    assert push.counts == {"success": 3, "failure": 0, "dropped": 0}


async def test_a_down_endpoint_is_retried_and_its_outage_logged_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver = Receiver()
    down = [True]
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery, down=down)
        started = trio.current_time()
        await nursery.start(partial(push.run))
        await trio.sleep(170)
        down[0] = False
        pushed, _ = await receiver.wait_for_pushes(2)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    # The exports at 60 s and 120 s are each tried 5 times with growing pauses, then given up.
    from loxone_trio_exporter.otlp import MAX_ATTEMPTS  # noqa: PLC0415

    tries = [attempt - started for attempt in receiver.attempts]
    first_interval = [t for t in tries if t < 120]
    assert len(first_interval) == MAX_ATTEMPTS
    pauses = [b - a for a, b in itertools.pairwise(first_interval)]
    assert first_interval[0] == 60.0
    assert all(1 <= p <= 2 ** (i + 1) for i, p in enumerate(pauses)), pauses
    assert pauses == sorted(pauses)
    assert pushed.received_at - started == 180.0  # the next interval's export, on time
    assert push.counts == {"success": 2, "failure": 2, "dropped": 0}
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "OTLP push to http://collector.example:4318/v1/metrics failed" in warnings[0].message
    assert "Connection refused" in warnings[0].message
    recovered = [r.message for r in caplog.records if "works again" in r.message]
    assert recovered == [
        "OTLP push to http://collector.example:4318/v1/metrics works again after 120 s; "
        "2 export(s) were not delivered"
    ]
    assert SECRET not in caplog.text


async def test_an_unsent_export_is_replaced_by_the_next_intervals(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """With a short interval the retries reach the next interval: that export replaces the
    unsent one (counted as dropped), and after the outage there is no backlog to catch up."""
    receiver = Receiver()
    down = [True]
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery, down=down, interval_seconds=5.0)
        started = trio.current_time()
        await nursery.start(partial(push.run))
        await trio.sleep(32.5)
        down[0] = False
        pushes = await receiver.wait_for_pushes(3)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    times = [p.received_at - started for p in pushes]
    # The export of 30 s gets through on a retry; then one per interval, none queued.
    assert 32.5 < times[0] < 35.0
    assert times[1:] == [35.0, 40.0]
    assert push.counts["dropped"] == 5  # the exports of 5, 10, ... 25 s
    assert push.counts["failure"] == 0
    assert push.counts["success"] == 3


async def test_a_silent_endpoint_times_out(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    receiver = Receiver(silent=True)
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery, timeout_seconds=10.0)
        started = trio.current_time()
        await nursery.start(partial(push.run))
        await trio.sleep(119)
        nursery.cancel_scope.cancel()
    times = [p.received_at - started for p in receiver.pushes]
    assert times[0] == 60.0
    assert times[1] >= 71.0  # 10 s without an answer, then at least 1 s of backoff
    assert push.counts["success"] == 0
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "no answer within 10 s" in warning.message


@pytest.mark.parametrize(("status", "tries"), [(400, 1), (401, 1), (503, 5), (429, 5)])
async def test_refusals_for_good_are_not_retried(
    autojump_clock: trio.testing.MockClock, status: int, tries: int
) -> None:
    receiver = Receiver(status=status)
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery)
        await nursery.start(partial(push.run))
        await trio.sleep(119)
        nursery.cancel_scope.cancel()
    assert len(receiver.pushes) == tries
    assert push.counts == {"success": 0, "failure": 1, "dropped": 0}


async def test_uncompressed_body_and_a_counter_family_for_metrics(
    autojump_clock: trio.testing.MockClock,
) -> None:
    receiver = Receiver()
    async with trio.open_nursery() as nursery:
        push = pusher(receiver, nursery, gzip=False)
        await nursery.start(partial(push.run))
        (pushed,) = await receiver.wait_for_pushes(1)
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert "content-encoding" not in pushed.headers
    (family,) = push.families()
    assert family.name == "loxone_exporter_otlp_exports_total"
    assert family.type == "counter"
    assert dict(family.series) == {
        (("result", "success"),): 1.0,
        (("result", "failure"),): 0.0,
        (("result", "dropped"),): 0.0,
    }
    assert SECRET not in repr(push._settings)


async def test_https_with_a_trusted_and_an_untrusted_certificate(
    autojump_clock: trio.testing.MockClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from loxone_trio_exporter.otlp import Endpoint  # noqa: PLC0415

    ca = make_ca(tmp_path)
    server_cert = issue(tmp_path, "collector", ca, dns_names=("collector.example",))
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(server_cert.cert_file, server_cert.key_file)
    trusting = ssl.create_default_context(cafile=str(ca.cert_file))
    endpoint = Endpoint.from_url("https://collector.example/v1/metrics")
    assert (endpoint.tls, endpoint.port) == (True, 443)
    for client_context in (trusting, None):  # None: the system's CA store, which lacks our CA
        receiver = Receiver()
        async with trio.open_nursery() as nursery:
            from loxone_trio_exporter.otlp import OtlpPusher  # noqa: PLC0415

            push = OtlpPusher(
                settings(endpoint=endpoint),  # type: ignore[arg-type]
                collect,
                open_stream=receiver.opener(nursery, server_context=server_context),
                ssl_context=client_context,
                random_source=random.Random(7),  # noqa: S311 - seeded jitter, not secrets
                encode_in_thread=False,
            )
            await nursery.start(partial(push.run))
            await trio.sleep(61)
            nursery.cancel_scope.cancel()
        if client_context is trusting:
            assert push.counts["success"] == 1
            assert receiver.pushes[0].headers["host"] == "collector.example:443"
        else:
            assert push.counts["success"] == 0
            assert receiver.pushes == []
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "TLS certificate not accepted" in warning.message
