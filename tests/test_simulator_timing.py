"""The simulator's timeouts, on virtual time: the real defaults, checked to the second.

The server's connection handler runs over an in-memory stream pair, so trio's autojump clock can
skip the waiting while every byte still goes through the real HTTP upgrade and WebSocket framing.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
import trio
import trio.testing
import trio_websocket
from cryptography.hazmat.primitives.asymmetric import rsa
from ws_client import LoxoneTestClient

from loxone_trio_exporter.protocol import KeepaliveReceived
from loxone_trio_exporter.simulator import (
    Fault,
    FaultKind,
    SimulatedServer,
    SimulatorOptions,
)

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def server():
    return SimulatedServer(
        SimulatorOptions(port=0, controls=13, seed=3),
        index=0,
        private_key=PRIVATE_KEY,
        ssl_context=None,
    )


@asynccontextmanager
async def connected(server: SimulatedServer):
    client_stream, server_stream = trio.testing.memory_stream_pair()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.handle_connection, server_stream)
        ws = await trio_websocket.wrap_client_stream(
            nursery, client_stream, "simulator", "/ws/rfc6455", subprotocols=["remotecontrol"]
        )
        yield LoxoneTestClient(ws)
        nursery.cancel_scope.cancel()


async def login(client: LoxoneTestClient, server: SimulatedServer) -> None:
    await client.key_exchange(server.public_key_value)
    reply, _ = await client.get_token("demo", "demo")
    assert reply.ok


async def closed_after(client: LoxoneTestClient) -> tuple[float, int]:
    start = trio.current_time()
    try:
        while True:
            await client.ws.get_message()
    except trio_websocket.ConnectionClosed as closed:
        return trio.current_time() - start, closed.reason.code


async def test_no_login_within_5_seconds_is_420_then_close(server, autojump_clock):
    async with connected(server) as client:
        start = trio.current_time()
        reply = await client.reply()
        assert reply.code == 420
        assert trio.current_time() - start == pytest.approx(5.0)
        _, code = await closed_after(client)
        assert code == 1008


async def test_a_login_in_time_is_not_cut(server, autojump_clock):
    async with connected(server) as client:
        await trio.sleep(4.9)
        await login(client, server)
        await trio.sleep(10)
        await client.ws.send_message("keepalive")
        assert isinstance(await client.next_event(), KeepaliveReceived)


async def test_silence_for_five_minutes_closes_the_connection(server, autojump_clock):
    async with connected(server) as client:
        await login(client, server)
        await trio.sleep(299)
        await client.ws.send_message("keepalive")  # traffic resets the timer
        assert isinstance(await client.next_event(), KeepaliveReceived)
        waited, code = await closed_after(client)
        assert waited == pytest.approx(300.0)
        assert code == 1000


async def test_stall_lasts_its_seconds(server, autojump_clock):
    async with connected(server) as client:
        await login(client, server)
        server.inject(Fault(FaultKind.STALL, seconds=60))
        await client.ws.send_message("keepalive")
        with trio.move_on_after(59):
            await client.ws.get_message()
            pytest.fail("a stalled Miniserver answered")
        await trio.sleep(2)
        await client.ws.send_message("keepalive")
        assert isinstance(await client.next_event(), KeepaliveReceived)


async def test_clear_ends_a_stall_early(server, autojump_clock):
    async with connected(server) as client:
        await login(client, server)
        server.inject(Fault(FaultKind.STALL, seconds=3600))
        await client.ws.send_message("keepalive")
        with trio.move_on_after(10):
            await client.ws.get_message()
            pytest.fail("a stalled Miniserver answered")
        server.inject(Fault(FaultKind.CLEAR))
        await client.ws.send_message("keepalive")
        assert isinstance(await client.next_event(), KeepaliveReceived)


async def test_boot_lasts_its_seconds(server, autojump_clock):
    server.inject(Fault(FaultKind.BOOT, seconds=30))
    assert server.booting
    await trio.sleep(29.9)
    assert server.booting
    await trio.sleep(0.2)
    assert not server.booting
    async with connected(server) as client:
        await login(client, server)  # the WebSocket is accepted again
        reply = await client.request("jdev/sps/LoxAPPversion3")
        assert reply.value == server.model.last_modified
