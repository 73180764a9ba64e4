"""Web server defects, each shown against the real server on loopback over raw sockets.

An HTTP client library would hide these (it never sends a malformed body, it speaks one HTTP
version), so the requests here are bytes written by hand.
"""

from __future__ import annotations

from functools import partial

import attrs
import pytest
import trio
from http_client import http_request

from loxone_trio_exporter.web import MetricsBody, MiniserverView, create_app, serve_web


@attrs.define
class FixedSource:
    """A ``WebSource`` with fixed answers: only the web layer is under test."""

    def render_metrics(self, accept: str | None, accept_encoding: str | None) -> MetricsBody:
        return MetricsBody(b"up 1\n", "text/plain; version=0.0.4; charset=utf-8")

    def miniservers(self) -> list[MiniserverView]:
        return []


@attrs.frozen
class Reloaded:
    successful: bool = True
    message: str = "config reloaded"


@attrs.define
class CountingReload:
    """The reload callback; counts its calls the moment it is called, as the real one starts
    the reload in the exporter's nursery at once."""

    calls: int = 0

    async def __call__(self) -> Reloaded:
        self.calls += 1
        return Reloaded()


async def start(nursery: trio.Nursery, reload: CountingReload | None = None) -> int:
    app = create_app(FixedSource(), reload=reload)
    urls = await nursery.start(partial(serve_web, app, ["127.0.0.1:0"], trio.Event()))
    return int(urls[0].rsplit(":", 1)[1])


async def exchange(port: int, *parts: bytes, half_close: bool = False) -> bytes:
    """Send ``parts`` one write each (then EOF if asked), read until the server closes."""
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            for part in parts:
                await stream.send_all(part)
            if half_close:
                await stream.send_eof()
            answer = bytearray()
            while chunk := await stream.receive_some(65536):
                answer += chunk
            return bytes(answer)


# --- POST /-/reload reloads only after the whole request was read ------------------------------

CHUNKED_RELOAD = b"POST /-/reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"


@pytest.mark.parametrize(
    ("body_parts", "half_close"),
    [
        ([b"zz\r\nnot hex\r\n0\r\n\r\n"], False),  # a chunk size that is not hex
        ([b"5\r\nhello\r\n", b"3\r\nlonger than 3\r\n0\r\n\r\n"], False),  # chunk overruns
        ([b"5\r\nhel"], True),  # the client stops half-way through a chunk
    ],
    ids=["bad-chunk-size", "chunk-overrun", "cut-short"],
)
async def test_a_malformed_reload_request_is_refused_and_reloads_nothing(
    nursery: trio.Nursery, body_parts: list[bytes], half_close: bool
) -> None:
    reload = CountingReload()
    port = await start(nursery, reload)

    answer = await exchange(port, CHUNKED_RELOAD, *body_parts, half_close=half_close)

    assert answer.startswith(b"HTTP/1.1 400 "), answer
    # A well-formed reload afterwards is the only one: the refused request's handler is over.
    good = await http_request(port, "/-/reload", method="POST")
    assert good.status == 200
    assert reload.calls == 1


async def test_a_well_formed_chunked_reload_request_reloads_once(nursery: trio.Nursery) -> None:
    reload = CountingReload()
    port = await start(nursery, reload)

    answer = await exchange(
        port, CHUNKED_RELOAD.replace(b"Host: x", b"Host: x\r\nConnection: close"), b"0\r\n\r\n"
    )

    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert reload.calls == 1
