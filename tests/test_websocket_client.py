"""The exporter's WebSocket client against a wsproto server end, over an in-memory stream.

The server end is wsproto driven by the test, so each case controls exactly which bytes the
client reads at once: what arrives together is returned together, what arrives before a close
is delivered before it, faults in the server's frames close the connection from our side.
"""

from __future__ import annotations

import gc
import tracemalloc

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

from loxone_trio_exporter.runtime._websocket import (
    ClientWebSocket,
    HandshakeFailed,
    HandshakeRejected,
    WebSocketClosed,
)

LIMIT = 1000


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


@pytest.fixture
async def pair(nursery):
    ours, theirs = trio.testing.memory_stream_pair()
    client = ClientWebSocket(ours, max_message_size=LIMIT)
    server = Server(theirs)
    return client, server


async def opened(pair):
    client, server = pair
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.accept)
        await client.open("ms.local", "/ws/rfc6455", ["remotecontrol"])
    return client, server


async def test_the_upgrade_asks_for_the_path_and_subprotocol(pair):
    client, server = await opened(pair)
    assert server.request is not None
    assert server.request.host == "ms.local"
    assert server.request.target == "/ws/rfc6455"
    assert server.request.subprotocols == ["remotecontrol"]
    assert client.subprotocol == "remotecontrol"


async def test_messages_that_arrive_together_are_returned_together(pair):
    client, server = await opened(pair)
    await server.stream.send_all(server.frames(b"\x03\x02\x00\x00\x08\x00\x00\x00", b"payload"))
    assert await client.receive() == [b"\x03\x02\x00\x00\x08\x00\x00\x00", b"payload"]
    await server.stream.send_all(server.frames('{"LL": {}}'))
    assert await client.receive() == ['{"LL": {}}']


async def test_messages_sent_with_the_101_are_not_lost(pair):
    client, server = pair
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.accept, "early")
        await client.open("ms.local", "/ws/rfc6455", ["remotecontrol"])
    assert await client.receive() == ["early"]


async def test_a_message_split_over_frames_and_reads_is_joined(pair):
    client, server = await opened(pair)
    first = server.ws.send(BytesMessage(b"abc", message_finished=False))
    second = server.ws.send(BytesMessage(b"def", message_finished=True))
    await server.stream.send_all(first + second[:3])
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.stream.send_all, second[3:])
        assert await client.receive() == [b"abcdef"]


async def test_commands_go_out_as_text_and_pings_are_answered(pair):
    client, server = await opened(pair)
    await client.send("jdev/sps/enablebinstatusupdate")
    assert [(type(e), e.data) for e in await server.events()] == [
        (TextMessage, "jdev/sps/enablebinstatusupdate")
    ]
    await server.stream.send_all(server.ws.send(Ping(b"hi")) + server.frames("after"))
    assert await client.receive() == ["after"]
    assert [(type(e), e.payload) for e in await server.events()] == [(Pong, b"hi")]


async def test_a_close_comes_after_the_messages_before_it_and_is_answered(pair):
    client, server = await opened(pair)
    last_words = server.frames("last words")
    close = server.ws.send(CloseConnection(4003, "blocked (42)"))
    await server.stream.send_all(last_words + close)
    assert await client.receive() == ["last words"]
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.reason, raised.value.ours) == (
        4003,
        "blocked (42)",
        False,
    )
    assert [type(e) for e in await server.events()] == [CloseConnection]
    with pytest.raises(WebSocketClosed):
        await client.send("too late")


async def test_a_message_over_the_limit_closes_with_1009_from_our_side(pair):
    client, server = await opened(pair)
    await server.stream.send_all(server.frames(b"fine", b"x" * (LIMIT + 1)))
    assert await client.receive() == [b"fine"]
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.ours) == (1009, True)
    events = await server.events()
    assert [(type(e), e.code) for e in events] == [(CloseConnection, 1009)]


async def test_the_limit_counts_bytes_of_text_not_characters(pair):
    client, server = await opened(pair)
    fits = "\N{GRINNING FACE}" * (LIMIT // 4)  # four bytes each in UTF-8: exactly LIMIT
    over = "\N{GRINNING FACE}" * (LIMIT // 4 + 1)  # fewer characters than LIMIT, more bytes
    await server.stream.send_all(server.frames(fits, over))
    assert await client.receive() == [fits]
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.ours) == (1009, True)


async def test_a_refused_message_is_freed_without_the_cyclic_collector(pair):
    client, server = await opened(pair)
    size = 200_000
    client._max_message_size = size  # large enough for tracemalloc to see it clearly
    gc.disable()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # One message over the limit, in two frames: the first is kept until the second.
        await server.stream.send_all(
            server.ws.send(BytesMessage(b"x" * (size // 2 + 1), message_finished=False))
            + server.ws.send(BytesMessage(b"x" * (size // 2 + 1)))
        )
        with pytest.raises(WebSocketClosed):
            await client.receive()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        gc.enable()
    assert held < size // 4, f"{held} bytes still held after the refusal"


async def test_a_broken_frame_closes_with_1002_from_our_side(pair):
    client, server = await opened(pair)
    reserved_opcode = bytes([0x83, 0x00])  # FIN + opcode 3: reserved by RFC 6455
    await server.stream.send_all(server.frames("ok") + reserved_opcode)
    assert await client.receive() == ["ok"]
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.ours) == (1002, True)


async def test_the_end_of_the_stream_is_an_abnormal_closure(pair):
    client, server = await opened(pair)
    await server.stream.aclose()
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.ours) == (1006, False)


async def test_close_sends_a_close_frame_and_waits_for_the_answer(pair, nursery):
    client, server = await opened(pair)

    async def answer() -> None:
        events = await server.events()
        assert [(type(e), e.code) for e in events] == [(CloseConnection, 1000)]
        await server.stream.send_all(server.ws.send(events[0].response()))

    nursery.start_soon(answer)
    with trio.fail_after(5):
        await client.close()


async def test_a_503_upgrade_answer_is_a_rejection_with_its_status(pair):
    client, server = pair

    async def refuse() -> None:
        await server.read_request()
        reject = RejectConnection(status_code=503, headers=[], has_body=True)
        body = RejectData(data=b"booting", body_finished=True)
        await server.stream.send_all(server.ws.send(reject) + server.ws.send(body))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(refuse)
        with pytest.raises(HandshakeRejected) as raised:
            await client.open("ms.local", "/ws/rfc6455", ["remotecontrol"])
    assert raised.value.status_code == 503


@pytest.mark.parametrize("answer", [b"", b"SSH-2.0-OpenSSH\r\n\r\n"])
async def test_an_upgrade_answer_that_is_not_http_fails_the_handshake(pair, answer):
    client, server = pair

    async def answer_badly() -> None:
        await server.read_request()
        if answer:
            await server.stream.send_all(answer)
        await server.stream.aclose()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(answer_badly)
        with pytest.raises(HandshakeFailed):
            await client.open("ms.local", "/ws/rfc6455", ["remotecontrol"])


async def test_a_ping_after_our_close_frame_is_not_answered_and_the_close_completes(pair, nursery):
    client, server = await opened(pair)

    async def ping_then_answer() -> None:
        events = await server.events()
        assert [type(e) for e in events] == [CloseConnection]
        # A ping the server sent before it read our close, then its close answer.
        await server.stream.send_all(b"\x89\x02hi" + server.ws.send(events[0].response()))

    nursery.start_soon(ping_then_answer)
    with trio.fail_after(5):
        await client.close()
    with pytest.raises(WebSocketClosed) as raised:
        await client.receive()
    assert (raised.value.code, raised.value.ours) == (1000, True)
