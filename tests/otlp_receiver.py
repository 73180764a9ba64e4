"""A small OTLP/HTTP metrics receiver for tests: h11 on a trio stream, and every push decoded
with the official ``opentelemetry-proto`` classes (not the exporter's own code).

It serves over TCP (``trio.serve_tcp``, for end-to-end runs on real time) or over memory streams
(``opener``, for the pusher on virtual time). ``status`` sets the answer; ``silent`` makes it
read the request and never answer (a slow endpoint).
"""

from __future__ import annotations

import gzip
import math
import ssl
from collections.abc import Iterator
from typing import Any

import attrs
import h11
import pytest
import trio
import trio.testing
from conftest import strict_mode


def require_otlp_extra() -> None:
    """Skip (fail under ``LOXONE_TEST_STRICT=1``) when the ``otlp`` extra is not installed."""
    try:
        import google.protobuf  # noqa: F401, PLC0415
        import opentelemetry.proto  # noqa: F401, PLC0415
    except ImportError:
        reason = "the otlp extra is not installed (pip install -e '.[otlp]')"
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)


@attrs.frozen
class Push:
    """One decoded push: the request line's path, the headers (lower-case names), the message."""

    target: str
    headers: dict[str, str]
    request: Any  # ExportMetricsServiceRequest
    received_at: float  # trio clock

    def resource(self) -> dict[str, str]:
        (resource_metrics,) = self.request.resource_metrics
        return {kv.key: kv.value.string_value for kv in resource_metrics.resource.attributes}

    def metrics(self) -> Iterator[Any]:
        for resource_metrics in self.request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                yield from scope_metrics.metrics

    def metric(self, name: str) -> Any:
        (found,) = (metric for metric in self.metrics() if metric.name == name)
        return found

    def points(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        """Attributes -> value of every point of metric ``name``; fails on a duplicate."""
        metric = self.metric(name)
        kind = metric.WhichOneof("data")
        result: dict[frozenset[tuple[str, str]], float] = {}
        for point in getattr(metric, kind).data_points:
            key = frozenset((kv.key, kv.value.string_value) for kv in point.attributes)
            assert key not in result, f"duplicate point {key}"
            result[key] = point.as_double
        return result


@attrs.define
class Receiver:
    status: int = 200
    silent: bool = False
    pushes: list[Push] = attrs.Factory(list)
    #: When the pusher tried to connect through ``opener`` (refused tries included; trio clock).
    attempts: list[float] = attrs.Factory(list)
    _arrived: trio.Event = attrs.Factory(trio.Event)

    async def wait_for_pushes(self, count: int) -> list[Push]:
        while len(self.pushes) < count:
            await self._arrived.wait()
        return self.pushes

    async def handle_tls(self, stream: trio.abc.Stream, context: ssl.SSLContext) -> None:
        tls = trio.SSLStream(stream, context, server_side=True)
        try:
            await tls.do_handshake()
        except trio.BrokenResourceError:
            return  # the client refused our certificate
        await self.handle(tls)

    async def handle(self, stream: trio.abc.Stream) -> None:
        """Serve one connection (the pusher sends one request and closes)."""
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (  # noqa: PLC0415
            ExportMetricsServiceRequest,
            ExportMetricsServiceResponse,
        )

        connection = h11.Connection(h11.SERVER)
        request: h11.Request | None = None
        body = bytearray()
        async with stream:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await stream.receive_some(65536)
                    if not data:
                        return
                    connection.receive_data(bytes(data))
                elif isinstance(event, h11.Request):
                    request = event
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert request is not None
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            assert headers["content-type"] == "application/x-protobuf"
            payload = bytes(body)
            if headers.get("content-encoding") == "gzip":
                payload = gzip.decompress(payload)
            decoded = ExportMetricsServiceRequest.FromString(payload)
            self.pushes.append(Push(request.target.decode(), headers, decoded, trio.current_time()))
            self._arrived.set()
            self._arrived = trio.Event()
            if self.silent:
                await trio.sleep(math.inf)
            answer = ExportMetricsServiceResponse().SerializeToString()
            response = h11.Response(
                status_code=self.status,
                headers=[
                    ("Content-Type", "application/x-protobuf"),
                    ("Content-Length", str(len(answer))),
                ],
            )
            await stream.send_all(
                connection.send(response)
                + connection.send(h11.Data(data=answer))
                + connection.send(h11.EndOfMessage())
            )

    def opener(
        self,
        nursery: trio.Nursery,
        *,
        down: list[bool] | None = None,
        server_context: ssl.SSLContext | None = None,
    ) -> Any:
        """An ``open_stream`` for the pusher over memory streams; while ``down[0]`` is true the
        connection is refused, as by a stopped collector. With ``server_context`` the receiver
        speaks TLS."""

        async def open_stream(host: str, port: int) -> trio.abc.Stream:
            self.attempts.append(trio.current_time())
            if down is not None and down[0]:
                raise ConnectionRefusedError(111, "Connection refused")
            client, server = trio.testing.memory_stream_pair()
            if server_context is None:
                nursery.start_soon(self.handle, server)
            else:
                nursery.start_soon(self.handle_tls, server, server_context)
            return client

        return open_stream
