"""One simulated Miniserver WebSocket connection: wsproto framing around a ``ServerSession``.

Two tasks per connection: the reader feeds client frames to the session and queues its replies;
the writer is the only one that writes to the stream, so replies, pongs, state tables from the
broadcaster and the close frame go out in the order they were queued.

A client that goes away without a close frame (a cut cable, a reset) ends its own connection and
nothing else: the reader and writer take a broken stream as the end, and once the writer has
stopped nothing more is queued, so the broadcaster (which serves every client) never meets a
closed outbox.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import attrs
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    TextMessage,
)

from ..protocol import MessageIdentifier, build_header
from ._flood import flood_message
from ._outputs import Close, Output, Send, StartStreaming
from ._session import ServerSession

if TYPE_CHECKING:
    from ._server import SimulatedServer

log = logging.getLogger(__name__)

OUTBOX_CAPACITY = 2000  # messages; a client this far behind is cut, as a Miniserver would
READ_CHUNK = 65536


@attrs.frozen
class _CloseFrame:
    code: int
    reason: str


@attrs.frozen
class _RawEvent:
    """A wsproto event to send as it is (pong, close reply)."""

    event: Event


@attrs.frozen
class _FloodTable:
    """A flood table's header and payload: one item, so that nothing queued by another task can
    come between them on the wire. Each holds one of the client's flood slots until written."""

    messages: tuple[bytes, bytes]


_Outgoing = bytes | str | _CloseFrame | _RawEvent | _FloodTable
FLOOD_TABLES_QUEUED = 4


class WebSocketClient:
    """A connected client of one simulated Miniserver."""

    def __init__(self, server: SimulatedServer, stream: trio.abc.Stream, ws: WSConnection) -> None:
        self.server = server
        self.stream = stream
        self.ws = ws
        # Over TLS a real Miniserver takes commands in clear (firmware >= 11.2, protocol doc 4.4).
        self.session: ServerSession = server.new_session(secure=isinstance(stream, trio.SSLStream))
        self.streaming = False
        self._outbox_send, self._outbox_receive = trio.open_memory_channel[_Outgoing](
            OUTBOX_CAPACITY
        )
        self._cancel_scope = trio.CancelScope()
        self._closing = False
        self._nursery: trio.Nursery | None = None
        self._flood_scope: trio.CancelScope | None = None
        # Flood tables queued and not yet written: a few at most, so the outbox keeps room for
        # the broadcast (a full outbox cuts the client as too slow).
        self._flood_slots = trio.Semaphore(FLOOD_TABLES_QUEUED)

    # --- used by the server: faults and broadcasting ------------------------------------------

    def offer(self, messages: list[bytes]) -> bool:
        """Queue broadcast messages without waiting; ``False`` if they could not be queued (the
        client is then cut). A client that is closing drops them."""
        if self._closing:
            return True
        return all(self._queue_nowait(message) for message in messages)

    def queue(self, message: bytes | str) -> None:
        self._queue(message)

    def flood(self, table: str, size: int, seconds: float) -> None:
        """Send ``table`` tables of ``size`` bytes back to back for ``seconds`` (``_flood``)."""
        if self._nursery is None or self._closing:
            return
        self.stop_flood()
        self._flood_scope = trio.CancelScope(deadline=trio.current_time() + seconds)
        self._nursery.start_soon(self._flood, table, size, self._flood_scope)

    def stop_flood(self) -> None:
        if self._flood_scope is not None:
            self._flood_scope.cancel()
            self._flood_scope = None

    async def _flood(self, table: str, size: int, scope: trio.CancelScope) -> None:
        with scope:
            try:
                while not self._closing:
                    # Header and table as one item: a broadcast queued while this waits for
                    # room must not land between them.
                    await self._flood_slots.acquire()  # released once written
                    await self._outbox_send.send(_FloodTable(flood_message(table, size)))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return  # the client is gone

    def close(self, code: int, reason: str) -> None:
        """Send a close frame after what is queued, then end the connection."""
        self._queue(_CloseFrame(code, reason))
        self._closing = True

    def abort(self) -> None:
        """End the connection at once, without a close frame (a cut cable, a reboot)."""
        self._closing = True
        self._cancel_scope.cancel()

    def _queue(self, item: _Outgoing) -> None:
        if not self._closing:
            self._queue_nowait(item)

    def _queue_nowait(self, item: _Outgoing) -> bool:
        """Put ``item`` in the outbox; ``False`` (and the connection ends) if it cannot go."""
        try:
            self._outbox_send.send_nowait(item)
        except trio.WouldBlock:
            log.warning("simulator: client too slow for the event rate, cutting it")
            self.abort()
            return False
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # The writer has stopped: the client is gone and this connection is ending anyway.
            # Callers are the broadcaster and fault injection, which serve every client, so
            # this must not raise.
            self.abort()
            return False
        return True

    # --- the connection -------------------------------------------------------------------------

    async def run(self, subprotocols: list[str]) -> None:
        accept = AcceptConnection(
            subprotocol="remotecontrol" if "remotecontrol" in subprotocols else None
        )
        await self.stream.send_all(self.ws.send(accept))
        self.server.clients.add(self)
        try:
            with self._cancel_scope:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._writer, nursery.cancel_scope)
                    nursery.start_soon(self._auth_watchdog)
                    await self._reader()
                    # The reader ended (close requested or client gone): let the writer drain.
                    self._closing = True
                    self._outbox_send.close()
        finally:
            self.server.clients.discard(self)
            self.server.streaming_clients.discard(self)
            with trio.CancelScope(shield=True):
                await self.stream.aclose()

    async def _reader(self) -> None:
        text_parts: list[str] = []
        binary_parts: list[bytes] = []
        idle_timeout = self.server.options.idle_timeout_seconds
        while not self._closing:
            with trio.move_on_after(idle_timeout) as idle:
                data = await self._receive_some()
            if idle.cancelled_caught:
                self.close(1000, "idle timeout")  # the Miniserver drops silent clients
                return
            if not data:
                return
            self.ws.receive_data(data)
            for event in self.ws.events():
                if isinstance(event, TextMessage):
                    text_parts.append(event.data)
                    if event.message_finished:
                        text, text_parts = "".join(text_parts), []
                        self._apply(self.session.receive(text, self.server.wall_clock()))
                elif isinstance(event, BytesMessage):
                    binary_parts.append(bytes(event.data))
                    if event.message_finished:
                        data_, binary_parts = b"".join(binary_parts), []
                        self._apply(self.session.receive_binary(data_))
                elif isinstance(event, Ping):
                    self._queue(_RawEvent(event.response()))
                elif isinstance(event, CloseConnection):
                    self._queue(_RawEvent(event.response()))
                    self._closing = True
                    return

    async def _receive_some(self) -> bytes:
        """The next bytes from the client; ``b""`` once it is gone, cleanly or not.

        A reset is how a cut client ends: an error here would reach the server's connection
        handler wrapped in this connection's nursery group and be logged as a failure.
        """
        try:
            return bytes(await self.stream.receive_some(READ_CHUNK))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return b""

    def _apply(self, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Send):
                if self.server.stalled:
                    continue  # a stalled Miniserver answers nothing, keepalives included
                for message in output.messages:
                    self._queue(message)
            elif isinstance(output, StartStreaming):
                self.server.start_streaming(self)
            elif isinstance(output, Close):
                self.close(output.code, output.reason)

    async def _auth_watchdog(self) -> None:
        await trio.sleep(self.server.options.auth_timeout_seconds)
        if not self.session.authenticated:
            self._apply(self.session.on_auth_timeout())

    async def _writer(self, connection_scope: trio.CancelScope) -> None:
        async with self._outbox_receive:
            try:
                await self._write_until_done()
            finally:
                # However the writer ends (close frame sent, client gone, cancelled), nothing
                # more may be queued: the outbox closes with this block.
                self._closing = True
        connection_scope.cancel()

    async def _write_until_done(self) -> None:
        async for first in self._outbox_receive:
            batch = [first]
            # Drain what is already queued into one write: a tick's tables go out together.
            while len(batch) < 256:
                try:
                    batch.append(self._outbox_receive.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            done = await self._write(batch)
            if done:
                return

    async def _write(self, queued: list[_Outgoing]) -> bool:
        """Write a batch; ``True`` when a close frame went out and the connection is over."""
        chunks: list[bytes] = []
        finished = False
        batch: list[bytes | str | _CloseFrame | _RawEvent] = []
        for item in queued:
            if isinstance(item, _FloodTable):
                batch += item.messages
                self._flood_slots.release()
            else:
                batch.append(item)
        for item in batch:
            event: Event
            if isinstance(item, _CloseFrame):
                event = CloseConnection(code=item.code, reason=item.reason)
            elif isinstance(item, _RawEvent):
                event = item.event
            else:
                event = TextMessage(item) if isinstance(item, str) else BytesMessage(item)
            closing = isinstance(event, CloseConnection)
            # The reader may have taken the client's close frame after this was queued: then
            # only our close answer may still go out (wsproto refuses anything else).
            allowed = _MAY_SEND_CLOSE if closing else (ConnectionState.OPEN,)
            if self.ws.state in allowed:
                chunks.append(self.ws.send(event))
            if closing:
                finished = True
                break
        try:
            await self.stream.send_all(b"".join(chunks))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return True
        return finished


_MAY_SEND_CLOSE = (ConnectionState.OPEN, ConnectionState.REMOTE_CLOSING)


def out_of_service_header() -> bytes:
    return build_header(MessageIdentifier.OUT_OF_SERVICE, 0)


# A header with an identifier that does not exist: what the ``garbage`` fault sends.
GARBAGE_MESSAGE = bytes([0x03, 0xEE, 0x00, 0x00]) + (2**32 - 1).to_bytes(4, "little")


def new_server_websocket() -> WSConnection:
    return WSConnection(ConnectionType.SERVER)
