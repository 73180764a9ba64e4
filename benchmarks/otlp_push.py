"""OTLP push scenario (issue 17): what one push of the ``/metrics`` series costs, and its size.

The state owner holds generated Miniservers (``Pipeline``); each run changes every value and
times one whole push as the running exporter makes it (``OtlpPusher.push_once``: render the text
exposition in steps, parse and encode to protobuf and gzip in a worker thread, POST over
loopback to a sink that reads the body and answers 200) while a task that sleeps 1 ms at a
time notes the longest wait between its wake-ups (what a session would feel), then the parts on
their own: the render after every value changed, and the encoding (reading the text back,
building the protobuf message, serializing, gzip). Sizes: the gzipped body that goes over the
wire and the protobuf before compression. Skipped (no figures) without the ``otlp`` extra.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable
from functools import partial

import h11
import trio

from ._pipeline import Pipeline
from ._results import Figure, figure
from ._settings import Settings

SCENARIO = "otlp push"


async def _sink(stream: trio.abc.Stream) -> None:
    """An OTLP endpoint that reads the request and answers 200 with an empty response."""
    connection = h11.Connection(h11.SERVER)
    async with stream:
        while True:
            event = connection.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(1 << 16)
                if not data:
                    return
                connection.receive_data(bytes(data))
            elif isinstance(event, h11.EndOfMessage):
                break
        reply = connection.send(h11.Response(status_code=200, headers=[("Content-Length", "0")]))
        await stream.send_all((reply or b"") + (connection.send(h11.EndOfMessage()) or b""))


async def _longest_wait(task_status: trio.TaskStatus[list[float]]) -> None:
    """Sleep 1 ms at a time; ``longest[0]`` is the longest time past the wake-up it was late."""
    longest = [0.0]
    task_status.started(longest)
    while True:
        before = time.perf_counter()
        await trio.sleep(0.001)
        longest[0] = max(longest[0], time.perf_counter() - before - 0.001)


def run(settings: Settings) -> list[Figure]:
    try:
        from loxone_trio_exporter.otlp import (  # noqa: PLC0415 - the optional extra
            Endpoint,
            OtlpPusher,
            PushSettings,
            encode_export,
        )
    except ImportError:
        print(f"{SCENARIO}: skipped, the otlp extra is not installed")
        return []
    pipeline = Pipeline(settings.otlp_series)
    web = pipeline.new_web_source()
    label = f"{_short(settings.otlp_series)} value series"
    whole: list[float] = []
    render: list[float] = []
    encode: list[float] = []
    sent: list[float] = []
    raw: list[float] = []
    points: list[float] = []
    stalls: list[float] = []

    async def measure() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, _sink, 0, host="127.0.0.1"))
            port = listeners[0].socket.getsockname()[1]
            push_settings = PushSettings(
                endpoint=Endpoint.from_url(f"http://127.0.0.1:{port}/v1/metrics"),
                headers={},
                interval_seconds=60.0,
                timeout_seconds=30.0,
                gzip=True,
                resource={"service.name": "benchmark", "service.instance.id": "bench"},
                version="benchmark",
            )

            async def collect() -> bytes | tuple[bytes, ...]:
                return (await web.render_metrics(None, None)).body

            pusher = OtlpPusher(push_settings, collect)
            await pusher.push_once(replaced_at=math.inf)  # warm: every series rendered once
            for _ in range(settings.runs):
                pipeline.change(1.0)
                gc.collect()
                async with trio.open_nursery() as watching:
                    longest = await watching.start(_longest_wait)
                    started = time.perf_counter()
                    await pusher.push_once(replaced_at=math.inf)
                    whole.append((time.perf_counter() - started) * 1000.0)
                    watching.cancel_scope.cancel()
                stalls.append(longest[0] * 1000.0)
                export = pusher.last_export
                assert export is not None
                sent.append(len(export.body))
                raw.append(export.uncompressed_bytes)
                points.append(export.data_points)
            assert pusher.counts["success"] == settings.runs + 1, pusher.counts
            nursery.cancel_scope.cancel()

    trio.run(measure)
    for _ in range(settings.runs):
        pipeline.change(1.0)
        started = time.perf_counter()
        body = web.render_metrics_now(None, None).body
        render.append((time.perf_counter() - started) * 1000.0)
        text = (body if isinstance(body, bytes) else b"".join(body)).decode()
        encoding = partial(
            encode_export,
            text,
            {"service.name": "benchmark"},
            scope_version="benchmark",
            time_unix_nano=time.time_ns(),
            start_time_unix_nano=time.time_ns(),
            gzip=True,
        )
        encode.append(_timed(encoding))
    note = f"{int(points[0]):,} data points per push; POST to a loopback sink"
    return [
        figure(SCENARIO, f"{label}: one whole push", "ms", whole, note=note),
        figure(SCENARIO, f"{label}: longest event-loop delay during a push", "ms", stalls),
        figure(SCENARIO, f"{label}: render of the text exposition", "ms", render),
        figure(SCENARIO, f"{label}: read back + protobuf + gzip (worker thread)", "ms", encode),
        figure(SCENARIO, f"{label}: body sent (protobuf, gzip)", "kB", [b / 1000 for b in sent]),
        figure(SCENARIO, f"{label}: protobuf before gzip", "kB", [b / 1000 for b in raw]),
    ]


def _timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000.0


def _short(count: int) -> str:
    return f"{count // 1000}k" if count >= 1000 and count % 1000 == 0 else str(count)
