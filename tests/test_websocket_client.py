"""The exporter's WebSocket (trio-websocket over a stream we open) against a wsproto server end.

The server end is wsproto driven by the test over an in-memory stream, so each case controls
exactly which bytes arrive: what arrives before a close is delivered before it, every way the
WebSocket ends is a ``SessionEnded`` with its reason, the size limit counts bytes on the wire
(text included), and a server that hangs up during the upgrade ends the wait at once.
"""

from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from loxone_trio_exporter.runtime._endings import SessionEnded
from loxone_trio_exporter.runtime._messages import ReconnectReason
from loxone_trio_exporter.runtime._transport import MiniserverWebSocket, open_websocket

LIMIT = 1000
UPGRADE_SECONDS = 10.0


class Server:
    """The server end: a wsproto connection on the other half of a memory stream."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.SERVER)
        self.request: Request | None = None

    async def read_request(self) -> Request:
        while self.request is None:
            self.ws.receive_data(await self.stream.receive_some())
            for event in self.ws.events():
                assert isinstance(event, Request)
                self.request = event
        return self.request

    async def accept(self, *then: str | bytes) -> None:
        """Accept, with ``then`` in the same write as the 101."""
        await self.read_request()
        accept = self.ws.send(AcceptConnection(subprotocol="remotecontrol"))
        await self.stream.send_all(accept + self.frames(*then))

    def frames(self, *messages: str | bytes) -> bytes:
        return b"".join(
            self.ws.send(TextMessage(m) if isinstance(m, str) else BytesMessage(m))
            for m in messages
        )

    async def events(self) -> list[object]:
        self.ws.receive_data(await self.stream.receive_some())
        return list(self.ws.events())


def websocket(
    stream: trio.abc.Stream, limit: int = LIMIT
) -> AbstractAsyncContextManager[MiniserverWebSocket]:
    return open_websocket(
        stream,
        "ms.local",
        upgrade_seconds=UPGRADE_SECONDS,
        update_retry=5.0,
        booting_retry=7.0,
        max_message_size=limit,
    )


async def ending(
    stream: trio.abc.Stream,
    body: Callable[[MiniserverWebSocket], Awaitable[object]],
    limit: int = LIMIT,
) -> SessionEnded:
    """Run ``body`` on an open WebSocket; the ``SessionEnded`` that ends it."""
    try:
        async with websocket(stream, limit) as ws:
            await body(ws)
    except SessionEnded as ended:
        return ended
    raise AssertionError("the WebSocket did not end")


async def nothing(_ws: MiniserverWebSocket) -> None:
    pass


@pytest.fixture
def streams():
    ours, theirs = trio.testing.memory_stream_pair()
    return ours, Server(theirs)


async def test_the_upgrade_asks_for_the_path_and_subprotocol_and_keeps_early_messages(
    streams, nursery
):
    ours, server = streams
    nursery.start_soon(server.accept, "sent with the 101", b"\x03\x00\x00\x00\x00\x00\x00\x00")
    async with websocket(ours) as ws:
        assert await ws.receive() == "sent with the 101"
        assert await ws.receive() == b"\x03\x00\x00\x00\x00\x00\x00\x00"
    assert server.request is not None
    assert (server.request.host, server.request.target, server.request.subprotocols) == (
        "ms.local",
        "/ws/rfc6455",
        ["remotecontrol"],
    )


async def test_commands_go_out_as_text_and_pings_are_answered(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)
    async with websocket(ours) as ws:
        await ws.send("jdev/sps/enablebinstatusupdate")
        assert [(type(e), e.data) for e in await server.events()] == [
            (TextMessage, "jdev/sps/enablebinstatusupdate")
        ]
        await server.stream.send_all(server.ws.send(Ping(b"hi")) + server.frames("after"))
        assert await ws.receive() == "after"
        assert [(type(e), e.payload) for e in await server.events()] == [(Pong, b"hi")]


async def test_a_close_comes_after_the_messages_before_it_and_says_why(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)
    async with websocket(ours) as ws:
        last_words = server.frames("last words")
        close = server.ws.send(CloseConnection(4003, "blocked (42)"))
        await server.stream.send_all(last_words + close)
        assert await ws.receive() == "last words"
        with pytest.raises(SessionEnded) as raised:
            await ws.receive()
        with pytest.raises(SessionEnded):
            await ws.send("too late")
    assert (raised.value.reason, raised.value.retry_after) == (ReconnectReason.BLOCKED, 42.0)
    assert [type(e) for e in await server.events()] == [CloseConnection]  # the close answered


async def test_a_message_over_the_limit_is_refused_with_1009(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)

    async def body(ws: MiniserverWebSocket) -> None:
        await server.stream.send_all(server.frames(b"fine", b"x" * (LIMIT + 1)))
        assert await ws.receive() == b"fine"
        await ws.receive()

    ended = await ending(ours, body)
    assert ended.reason is ReconnectReason.PROTOCOL_ERROR
    assert "larger than the exporter's 16 MiB limit" in ended.detail
    assert [(type(e), e.code) for e in await server.events()] == [(CloseConnection, 1009)]


async def test_the_limit_counts_bytes_of_text_not_characters(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)
    fits = "\N{GRINNING FACE}" * (LIMIT // 4)  # four bytes each in UTF-8: exactly LIMIT
    over = "\N{GRINNING FACE}" * (LIMIT // 4 + 1)  # fewer characters than LIMIT, more bytes

    async def body(ws: MiniserverWebSocket) -> None:
        await server.stream.send_all(server.frames(fits, over))
        assert await ws.receive() == fits
        await ws.receive()

    assert "16 MiB limit" in (await ending(ours, body)).detail
    assert [(type(e), e.code) for e in await server.events()] == [(CloseConnection, 1009)]


async def test_a_long_text_is_cut_off_by_its_bytes_before_it_is_all_read(streams, nursery):
    # 100k characters pass trio-websocket's limit (it counts characters) but are 400 kB on the
    # wire: the meter under it breaks the stream once the limit plus one read is exceeded.
    limit = 100_000
    ours, server = streams
    nursery.start_soon(server.accept)
    text = "\N{GRINNING FACE}" * limit
    sent = 0

    async def feed() -> None:
        nonlocal sent
        payload = memoryview(server.ws.send(TextMessage(text)))
        for start in range(0, len(payload), 16384):
            await server.stream.send_all(payload[start : start + 16384])
            sent = start + 16384

    async def body(ws: MiniserverWebSocket) -> None:
        async with trio.open_nursery() as feeding:
            feeding.start_soon(feed)
            try:
                await ws.receive()
            finally:
                feeding.cancel_scope.cancel()

    assert "16 MiB limit" in (await ending(ours, body, limit)).detail
    assert sent < 4 * limit  # it never took the whole message


async def test_a_refused_message_is_freed_without_the_cyclic_collector(streams, nursery):
    ours, server = streams
    size = 200_000  # large enough for tracemalloc to see it clearly
    nursery.start_soon(server.accept)
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]

        async def body(ws: MiniserverWebSocket) -> None:
            # One message over the limit, in two frames: the first is kept until the second.
            await server.stream.send_all(
                server.ws.send(BytesMessage(b"x" * (size // 2 + 1), message_finished=False))
                + server.ws.send(BytesMessage(b"x" * (size // 2 + 1)))
            )
            await ws.receive()

        await ending(ours, body, size)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < size // 4, f"{held} bytes still held after the refusal"


async def test_a_broken_frame_ends_the_session_as_a_protocol_error(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)
    reserved_opcode = bytes([0x83, 0x00])  # FIN + opcode 3: reserved by RFC 6455

    async def body(ws: MiniserverWebSocket) -> None:
        await server.stream.send_all(server.frames("ok") + reserved_opcode)
        assert await ws.receive() == "ok"
        await ws.receive()

    ended = await ending(ours, body)
    assert ended.reason is ReconnectReason.PROTOCOL_ERROR
    assert "break RFC 6455 (closed with 1002" in ended.detail


async def test_the_end_of_the_stream_is_a_lost_connection(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)

    async def body(ws: MiniserverWebSocket) -> None:
        await server.stream.aclose()
        await ws.receive()

    assert (await ending(ours, body)).reason is ReconnectReason.CONNECTION_LOST


async def test_leaving_the_block_sends_a_close_frame_and_waits_for_the_answer(streams, nursery):
    ours, server = streams
    nursery.start_soon(server.accept)
    answered = trio.Event()

    async def answer() -> None:
        events = await server.events()
        assert [(type(e), e.code) for e in events] == [(CloseConnection, 1000)]
        await server.stream.send_all(server.ws.send(events[0].response()))
        answered.set()

    async with websocket(ours):
        nursery.start_soon(answer)
    assert answered.is_set()


@pytest.mark.parametrize(
    ("status", "reason", "retry_after"),
    [(503, ReconnectReason.BOOTING, 7.0), (404, ReconnectReason.UNREACHABLE, None)],
)
async def test_an_upgrade_refused_with_a_status_says_which(
    streams, nursery, status, reason, retry_after
):
    ours, server = streams

    async def refuse() -> None:
        await server.read_request()
        reject = RejectConnection(status_code=status, headers=[], has_body=True)
        body = RejectData(data=b"no", body_finished=True)
        await server.stream.send_all(server.ws.send(reject) + server.ws.send(body))

    nursery.start_soon(refuse)
    ended = await ending(ours, nothing)
    assert (ended.reason, ended.retry_after) == (reason, retry_after)
    assert str(status) in ended.detail


@pytest.mark.parametrize("answer", [b"", b"SSH-2.0-OpenSSH\r\n\r\n"])
async def test_a_server_that_hangs_up_in_the_upgrade_ends_it_at_once(
    streams, nursery, answer, autojump_clock
):
    ours, server = streams

    async def answer_badly() -> None:
        await server.read_request()
        if answer:
            await server.stream.send_all(answer)
        await server.stream.aclose()

    nursery.start_soon(answer_badly)
    start = trio.current_time()
    ended = await ending(ours, nothing)
    assert ended.reason is ReconnectReason.UNREACHABLE
    assert "is this a Miniserver?" in ended.detail
    assert trio.current_time() - start < UPGRADE_SECONDS  # not the timeout


async def test_an_upgrade_never_answered_ends_after_the_timeout(streams, nursery, autojump_clock):
    ours, server = streams
    nursery.start_soon(server.read_request)  # and then silence
    start = trio.current_time()
    ended = await ending(ours, nothing)
    assert trio.current_time() - start == UPGRADE_SECONDS
    assert "not answered within 10 s" in ended.detail
