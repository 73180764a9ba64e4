"""A tiny HTTP/1.1 client on h11 for tests that talk to a real server on loopback."""

from __future__ import annotations

import json
import ssl
from typing import Any

import attrs
import h11
import trio


@attrs.frozen
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def http_request(
    port: int,
    path: str,
    *,
    method: str = "GET",
    body: bytes = b"",
    headers: list[tuple[str, str]] | None = None,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
) -> Response:
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    if ssl_context is not None:
        stream = trio.SSLStream(stream, ssl_context, server_hostname=server_hostname or host)
    conn = h11.Connection(h11.CLIENT)
    all_headers = [("Host", f"{host}:{port}"), ("Connection", "close"), *(headers or [])]
    if body:
        all_headers.append(("Content-Length", str(len(body))))
    async with stream:
        data = conn.send(h11.Request(method=method, target=path, headers=all_headers))
        if body:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        await stream.send_all(data)
        status, response_headers, content = 0, {}, bytearray()
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode().lower(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                content += event.data
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return Response(status, response_headers, bytes(content))
