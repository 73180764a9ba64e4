"""Helpers for driving one connection task against the simulator and recording what it says."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import asynccontextmanager
from typing import Any

import trio
import trio.testing
from cryptography.hazmat.primitives.asymmetric import rsa

from loxone_trio_exporter.config import MiniserverConfig
from loxone_trio_exporter.errors import UnavailableError
from loxone_trio_exporter.protocol import HashAlgorithm
from loxone_trio_exporter.runtime._connection import MiniserverConnection
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    TablesReceived,
)
from loxone_trio_exporter.simulator import SimulatedServer, SimulatorOptions, User, serve_simulator

USERS = (
    User("sha256user", "correct horse", HashAlgorithm.SHA256),
    User("sha1user", "battery staple", HashAlgorithm.SHA1),
)
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
CLIENT_UUID = "0b7e6a4c-8a4e-5d3b-9f1e-5a6b7c8d9e0f"


def config_for(port: int, user: User, *, password: str | None = None, name: str = "home"):
    return MiniserverConfig(
        name=name,
        host="127.0.0.1",
        port=port,
        username=user.name,
        password=user.password if password is None else password,
        tls="off",
    )


class Recorder:
    """Runs a connection task and keeps every message it sends, with trio's time."""

    def __init__(self) -> None:
        self.messages: list[tuple[float, Any]] = []
        self.connection_repr = ""
        self.connection: Any = None  # the MiniserverConnection, once running
        self._changed = trio.Event()

    async def consume(self, receive: trio.MemoryReceiveChannel[Any]) -> None:
        async for message in receive:
            self.messages.append((trio.current_time(), message))
            self._changed.set()
            self._changed = trio.Event()

    async def wait_for(self, predicate: Callable[[Any], bool], count: int = 1) -> list[Any]:
        """The first ``count`` messages matching ``predicate`` (waiting for them)."""
        while True:
            found = [m for _, m in self.messages if predicate(m)]
            if len(found) >= count:
                return found[:count]
            await self._changed.wait()

    def time_of(self, predicate: Callable[[Any], bool], nth: int = 0) -> float:
        return [t for t, m in self.messages if predicate(m)][nth]


def status(state: ConnectionState) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, StatusChanged) and m.state is state


def lost(reason: ReconnectReason) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, SessionLost) and m.reason is reason


def table(kind: type) -> Callable[[Any], bool]:
    return lambda m: isinstance(m, TablesReceived) and isinstance(m.table, kind)


@asynccontextmanager
async def running(config: MiniserverConfig, **kwargs: Any):
    recorder = Recorder()
    send, receive = trio.open_memory_channel[Any](1000)
    async with trio.open_nursery() as nursery:
        connection = MiniserverConnection(config, send, client_uuid=CLIENT_UUID, **kwargs)
        recorder.connection = connection
        nursery.start_soon(connection.run)
        nursery.start_soon(recorder.consume, receive)
        yield recorder
        recorder.connection_repr = repr(connection)  # says the transport it used last
        nursery.cancel_scope.cancel()


async def start_simulator(nursery: trio.Nursery, **overrides: Any) -> SimulatedServer:
    settings = {"port": 0, "controls": 30, "users": USERS, "rate": 200.0, "seed": 11}
    handle = await nursery.start(serve_simulator, SimulatorOptions(**(settings | overrides)))
    return handle.servers[0]


@asynccontextmanager
async def in_memory(
    server: SimulatedServer,
    config: MiniserverConfig | None = None,
    *,
    wrap: Callable[[trio.abc.Stream], trio.abc.Stream] | None = None,
    reachable: Callable[[], bool] | None = None,
    **kwargs: Any,
):
    """A connection task whose every stream is an in-memory pair served by ``server``;
    ``wrap`` may stand between the connection and its end of the pair, and while
    ``reachable()`` is false every connect is refused."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_broadcaster)

        async def opener(_transport: object) -> trio.abc.Stream:
            if reachable is not None and not reachable():
                raise UnavailableError("cannot connect to 127.0.0.1:80: connection refused")
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(server.handle_connection, server_stream)
            return client_stream if wrap is None else wrap(client_stream)

        async with running(config or config_for(80, USERS[0]), opener=opener, **kwargs) as recorder:
            yield recorder
        nursery.cancel_scope.cancel()


def new_server(**overrides: Any) -> SimulatedServer:
    """A simulated Miniserver not bound to any port (for ``in_memory``)."""
    settings: dict[str, Any] = {"port": 0, "controls": 13, "seed": 3, "users": USERS, "rate": 50.0}
    options = SimulatorOptions(**(settings | overrides))
    return SimulatedServer(options, index=0, private_key=PRIVATE_KEY, ssl_context=None)
