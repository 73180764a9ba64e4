"""A simulator client cut mid-stream ends its own session, quietly; the simulator serves on.

Real sockets on loopback, so real time: the defect is a race between a connection ending (its
writer stops, its outbox closes) and the broadcaster offering that connection the next tables.
"""

from __future__ import annotations

import logging
import socket
import struct
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
import trio_websocket
from exporter_harness import poll
from http_client import http_request
from ws_client import MAX_MESSAGE_SIZE, LoxoneTestClient, open_client

from loxone_trio_exporter.protocol import HashAlgorithm, ValueStatesReceived, parse_ll_reply
from loxone_trio_exporter.simulator import SimulatedServer, SimulatorOptions, User, serve_simulator

USER = User("cutter", "cut-pw", HashAlgorithm.SHA256)
#: Before the fix the simulator died (or logged an error) within the first few cuts.
CUTS = 20


async def start_simulator(nursery: trio.Nursery) -> SimulatedServer:
    # Many controls make large tables; a 1 ms tick at a high rate keeps the broadcaster offering
    # tables to every client nearly all the time, so it meets a connection as it ends.
    options = SimulatorOptions(
        port=0, controls=2000, users=(USER,), rate=100_000.0, tick_seconds=0.001, seed=3
    )
    handle = await nursery.start(serve_simulator, options)
    server: SimulatedServer = handle.servers[0]
    return server


async def log_in_and_stream(client: LoxoneTestClient, port: int) -> None:
    public_key = parse_ll_reply((await http_request(port, "/jdev/sys/getPublicKey")).body).value
    assert (await client.key_exchange(public_key)).ok
    reply, _ = await client.get_token(USER.name, USER.password)
    assert reply.ok, reply
    assert (await client.request("jdev/sps/enablebinstatusupdate")).ok


@asynccontextmanager
async def client_to_cut(port: int) -> AsyncIterator[LoxoneTestClient]:
    """A client whose connection is reset (no close frame, no FIN) when the block ends."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with trio.open_nursery() as nursery:
        ws = await trio_websocket.wrap_client_stream(
            nursery,
            stream,
            "127.0.0.1",
            "/ws/rfc6455",
            subprotocols=["remotecontrol"],
            max_message_size=MAX_MESSAGE_SIZE,
        )
        yield LoxoneTestClient(ws)
        nursery.cancel_scope.cancel()  # trio-websocket's reader must not see the reset
    reset(stream.socket)


def reset(sock: trio.socket.SocketType) -> None:
    """Close with SO_LINGER 0: the kernel sends RST, as when a cable is cut mid-transfer."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


async def count_value_tables(client: LoxoneTestClient, counter: list[int]) -> None:
    """Read everything (a client that does not read is cut as too slow), counting tables."""
    while True:
        if isinstance(await client.next_event(), ValueStatesReceived):
            counter[0] += 1


async def test_clients_cut_while_tables_are_in_flight_end_only_their_own_session(
    nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="loxone_trio_exporter.simulator")
    server = await start_simulator(nursery)
    async with open_client(server.port) as bystander, trio.open_nursery() as reading:
        await log_in_and_stream(bystander, server.port)
        tables = [0]
        reading.start_soon(count_value_tables, bystander, tables)

        for _ in range(CUTS):
            async with client_to_cut(server.port) as client:
                await log_in_and_stream(client, server.port)
            await poll(lambda: len(server.clients) == 1)  # only the bystander is left

        # The bystander's session went on through every cut.
        tables_after_cuts = tables[0]
        await poll(lambda: tables[0] > tables_after_cuts)
        assert len(server.streaming_clients) == 1
        reading.cancel_scope.cancel()

    # And a new client is served from the start.
    async with open_client(server.port) as newcomer:
        await log_in_and_stream(newcomer, server.port)
        while not isinstance(await newcomer.next_event(), ValueStatesReceived):
            pass

    simulator_records = [r for r in caplog.records if r.name.startswith("loxone_trio_exporter")]
    assert simulator_records == [], "a cut client is no news: nothing to warn about"
