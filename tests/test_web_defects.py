"""Web server defects, each shown against the real server on loopback over raw sockets.

An HTTP client library would hide these (it never sends a malformed body, it speaks one HTTP
version), so the requests here are bytes written by hand.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import attrs
import h2.config
import h2.connection
import h2.events
import pytest
import trio
import trio.testing
from http_client import http_request

from loxone_trio_exporter.web import MetricsBody, MiniserverView, create_app, serve_web
from loxone_trio_exporter.web._web_config import WebConfigFile, load_web_config


@attrs.define
class FixedSource:
    """A ``WebSource`` with fixed answers: only the web layer is under test."""

    async def render_metrics(self, accept: str | None, accept_encoding: str | None) -> MetricsBody:
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


@attrs.define
class SwitchableWebConfig:
    """A ``WebConfigProvider`` whose config a test replaces, as an edit on disk would."""

    config: WebConfigFile

    def current(self) -> WebConfigFile:
        return self.config


async def start(
    nursery: trio.Nursery,
    reload: CountingReload | None = None,
    web_config: SwitchableWebConfig | None = None,
) -> int:
    app = create_app(FixedSource(), reload=reload)
    serve = partial(serve_web, app, ["127.0.0.1:0"], trio.Event(), web_config=web_config)
    urls = await nursery.start(serve)
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


# --- HTTP/2 off means no HTTP/2 on plain HTTP either -------------------------------------------

H2C_UPGRADE = (
    b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\n"
    b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n"
)
# RFC 9113, 3.4: the connection preface, then an empty SETTINGS frame.
PRIOR_KNOWLEDGE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes.fromhex("000000040000000000")
SETTINGS_FRAME_TYPE = 4  # RFC 9113, 6.5: what an HTTP/2 server sends first


def web_config(tmp_path: Path, *, http2: bool) -> WebConfigFile:
    path = tmp_path / f"web-http2-{http2}.yml"
    path.write_text(f"http_server_config:\n  http2: {str(http2).lower()}\n", "utf-8")
    return load_web_config(path)


async def test_with_http2_off_an_h2c_upgrade_is_answered_in_http_1_1(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    port = await start(nursery, web_config=SwitchableWebConfig(web_config(tmp_path, http2=False)))

    answer = await exchange(port, H2C_UPGRADE)

    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert answer.endswith(b"\r\n\r\nOK\n")


async def test_with_http2_off_the_prior_knowledge_preface_is_refused(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    port = await start(nursery, web_config=SwitchableWebConfig(web_config(tmp_path, http2=False)))

    answer = await exchange(port, PRIOR_KNOWLEDGE)

    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"\r\nconnection: close\r\n" in answer.lower()


async def test_http2_follows_the_web_config_in_force(nursery: trio.Nursery, tmp_path: Path) -> None:
    """On (the default) Hypercorn switches as before; a changed file decides new connections."""
    in_force = SwitchableWebConfig(web_config(tmp_path, http2=True))
    port = await start(nursery, web_config=in_force)

    assert await healthy_over_h2c_upgrade(port) == b"OK\n"
    assert is_settings_frame(await first_bytes(port, PRIOR_KNOWLEDGE, FRAME_HEADER_SIZE))

    in_force.config = web_config(tmp_path, http2=False)
    assert (await exchange(port, H2C_UPGRADE)).startswith(b"HTTP/1.1 200 ")
    assert (await exchange(port, PRIOR_KNOWLEDGE)).startswith(b"HTTP/1.1 400 ")


FRAME_HEADER_SIZE = 9  # RFC 9113, 4.1: length (3 bytes), type, flags, stream identifier (4)


def is_settings_frame(data: bytes) -> bool:
    return len(data) >= FRAME_HEADER_SIZE and data[3] == SETTINGS_FRAME_TYPE


async def first_bytes(port: int, request: bytes, count: int) -> bytes:
    """At least ``count`` bytes of the answer (an HTTP/2 server keeps the connection open)."""
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(request)
            answer = bytearray()
            while len(answer) < count:
                chunk = await stream.receive_some(65536)
                assert chunk, f"closed after {bytes(answer)!r}"
                answer += chunk
            return bytes(answer)


async def healthy_over_h2c_upgrade(port: int) -> bytes:
    """``GET /-/healthy`` upgraded to HTTP/2 as an h2c client does it (RFC 7540, 3.2); the body.

    The response is read to its end: an HTTP/2 client that leaves before that currently keeps
    the server from stopping (a shielded send waits for it forever).
    """
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    settings = client.initiate_upgrade_connection()
    request = (
        b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n"
    )
    with trio.fail_after(10):
        async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
            await stream.send_all(request)
            answer = await first_bytes_of(stream, b"\r\n\r\n")
            head, after_head = answer.split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 101 "), head
            await stream.send_all(client.data_to_send())  # the client's preface
            return await h2_response_body(client, stream, after_head)


async def first_bytes_of(stream: trio.SocketStream, until: bytes) -> bytes:
    answer = bytearray()
    while until not in answer:
        chunk = await stream.receive_some(65536)
        assert chunk, f"closed after {bytes(answer)!r}"
        answer += chunk
    return bytes(answer)


async def h2_response_body(
    client: h2.connection.H2Connection, stream: trio.SocketStream, data: bytes
) -> bytes:
    """The body of stream 1 (the upgraded request), read to its end."""
    body = bytearray()
    while True:
        for event in client.receive_data(data):
            if isinstance(event, h2.events.DataReceived):
                body += event.data
            elif isinstance(event, h2.events.StreamEnded):
                return bytes(body)
        await stream.send_all(client.data_to_send())
        data = await stream.receive_some(65536)
        assert data, "the server closed before the response ended"


# --- running out of file descriptors: one warning line per interval, not a traceback per retry --


@contextmanager
def descriptors_exhausted() -> Iterator[None]:
    """Every descriptor this process may open is taken until the block ends.

    The soft limit is lowered to just above the highest descriptor in use (so only the few
    free ones below it need filling), then restored.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    highest = max(int(name) for name in os.listdir("/proc/self/fd"))
    resource.setrlimit(resource.RLIMIT_NOFILE, (highest + 1, hard))
    held: list[int] = []
    try:
        while True:
            try:
                held.append(os.open(os.devnull, os.O_RDONLY))
            except OSError as exc:
                if exc.errno != errno.EMFILE:
                    raise
                break
        yield
    finally:
        for descriptor in held:
            os.close(descriptor)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


async def get_healthy(client: trio.socket.SocketType) -> bytes:
    """``GET /-/healthy`` on a connected socket; the whole answer."""
    request = b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    async with trio.SocketStream(client) as stream:
        await stream.send_all(request)
        answer = bytearray()
        while chunk := await stream.receive_some(65536):
            answer += chunk
        return bytes(answer)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)")
async def test_out_of_descriptors_is_one_warning_line_per_ten_seconds(
    nursery: trio.Nursery,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = await start(nursery)
    client = trio.socket.socket()  # its descriptor is taken while there are some

    with descriptors_exhausted():
        # The kernel completes the handshake; the server's accept needs a descriptor.
        await client.connect(("127.0.0.1", port))
        # Virtual time: trio retries accept every 0.1 s, so this is some 350 failed accepts.
        await trio.sleep(35)

    # Descriptors are back: the waiting connection is accepted and served.
    with trio.fail_after(10):
        assert (await get_healthy(client)).startswith(b"HTTP/1.1 200 ")
    records = [r for r in caplog.records if r.name == "trio.serve_listeners"]
    lines = [logging.Formatter().format(record) for record in records]
    assert [r.levelno for r in records] == [logging.WARNING] * 4, lines  # at 0, 10, 20, 30 s
    assert all("\n" not in line for line in lines), "no traceback"
    first, *later = [record.getMessage() for record in records]
    assert first == (
        f"out of file descriptors (EMFILE: {os.strerror(errno.EMFILE)}) accepting connections "
        f"on http://127.0.0.1:{port}; retrying; raise the limit with ulimit -n"
    )
    for message in later:
        # Retries every 0.1 s in floating point land on either side of each 10 s mark.
        suppressed = re.fullmatch(
            re.escape(first) + r" \((\d+) more since the last warning\)", message
        )
        assert suppressed is not None, message
        assert int(suppressed[1]) in (99, 100)
