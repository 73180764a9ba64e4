"""The web side over real sockets: endpoints, escaping, and shutdown with keep-alive clients."""

from __future__ import annotations

import json
from functools import partial

import attrs
import h11
import trio
from http_client import http_request

from loxone_trio_exporter.web import MetricsBody, MiniserverView, create_app, serve_web


@attrs.define
class FixedSource:
    """A ``WebSource`` with fixed answers: the web layer is tested on its own here."""

    views: list[MiniserverView]

    async def render_metrics(self, accept, accept_encoding):
        return MetricsBody(b"up 1\n", "text/plain; version=0.0.4; charset=utf-8")

    def miniservers(self):
        return self.views


HOSTILE = MiniserverView('<script>alert("x")</script>', False, "connecting & <retrying>")
STREAMING = MiniserverView("home", True, "streaming", "15.3.10.21", 1234, 1_700_000_000.0)


async def start(nursery, views, telemetry_path="/metrics"):
    shutdown = trio.Event()
    app = create_app(FixedSource(views), telemetry_path=telemetry_path)
    urls = await nursery.start(partial(serve_web, app, ["127.0.0.1:0"], shutdown))
    port = int(urls[0].rsplit(":", 1)[1])
    return port, shutdown


async def test_metrics_and_pages(nursery):
    port, shutdown = await start(nursery, [STREAMING, HOSTILE], telemetry_path="/custom")
    metrics = await http_request(port, "/custom")
    assert metrics.status == 200
    assert metrics.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert metrics.body == b"up 1\n"
    assert (await http_request(port, "/metrics")).status == 404
    page = (await http_request(port, "/")).body.decode()
    assert '<a href="/custom">' in page
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "15.3.10.21" in page
    assert (await http_request(port, "/-/healthy")).status == 200
    ready = await http_request(port, "/-/ready")
    assert ready.status == 503
    assert ready.json()["not_streaming"] == ['<script>alert("x")</script>']
    health = await http_request(port, "/healthz")
    assert health.json()["status"] == "degraded"
    assert health.json()["miniservers"]["home"] == {"streaming": True, "state": "streaming"}
    shutdown.set()


async def test_ready_and_healthy_when_all_stream(nursery):
    port, shutdown = await start(nursery, [STREAMING])
    assert (await http_request(port, "/-/ready")).status == 200
    assert json.loads((await http_request(port, "/healthz")).body)["status"] == "healthy"
    shutdown.set()


async def test_unhealthy_when_none_streams(nursery):
    port, shutdown = await start(nursery, [HOSTILE])
    health = await http_request(port, "/healthz")
    assert (health.status, health.json()["status"]) == (503, "unhealthy")
    shutdown.set()


async def keep_alive_request(port: int) -> trio.SocketStream:
    """One request on a keep-alive connection, left open afterwards (as Prometheus does)."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(method="GET", target="/metrics", headers=[("Host", "x")])
    await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(await stream.receive_some(65536))
        elif isinstance(event, h11.EndOfMessage):
            return stream


async def test_shutdown_with_an_idle_keep_alive_client_is_quick():
    async with trio.open_nursery() as nursery:
        port, shutdown = await start(nursery, [STREAMING])
        client = await keep_alive_request(port)
        started = trio.current_time()
        shutdown.set()
    # Without the shielded sends this waits for the whole graceful timeout or forever.
    assert trio.current_time() - started < 1.0
    await client.aclose()


async def test_idle_keep_alive_connections_are_closed_by_the_server(nursery):
    port, shutdown = await start(nursery, [STREAMING])
    client = await keep_alive_request(port)
    with trio.fail_after(10):  # keep_alive_timeout is 5 s
        assert await client.receive_some(100) == b""
    await client.aclose()
    shutdown.set()
