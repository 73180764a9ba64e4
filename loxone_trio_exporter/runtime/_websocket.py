"""The client end of one WebSocket (RFC 6455, framed by wsproto), read and written by one task.

Why not trio-websocket here: it reads in a task of its own and hands every message to the
caller over a memory channel, so each message costs extra task switches, a queue and a cancel
scope in the caller's wait. At the idle budget (design section 4: 1% of a core at 100 events/s)
that hand-over was most of the exporter's CPU (docs/benchmarks.md). Here the connection task
reads the socket itself, and one read returns every message it completed: a value table's
header and payload usually arrive together and cost one wake-up.

Only the connection task may call these methods (one reader, one writer: the same task).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import cast

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.utilities import ProtocolError

RECEIVE_SIZE = 65536
ABNORMAL_CLOSURE = 1006  # RFC 6455: no close frame; the socket broke or ended
MESSAGE_TOO_BIG = 1009
NORMAL_CLOSURE = 1000

Message = str | bytes


def _wire_size(data: str | bytes | bytearray) -> int:
    """Bytes of ``data`` on the wire: wsproto hands text over decoded, and a character of
    UTF-8 takes up to four bytes, so the limit must not count characters."""
    if isinstance(data, str) and not data.isascii():  # ``isascii`` is O(1) on CPython's str
        return len(data.encode("utf-8"))
    return len(data)


class WebSocketClosed(Exception):
    """The WebSocket is closed: by the peer (its code and reason), or by us (``ours``): a
    message over our size limit (1009) or frames wsproto could not parse (1002, 1007)."""

    def __init__(self, code: int, reason: str = "", *, ours: bool = False) -> None:
        super().__init__(f"WebSocket closed with code {code}{f': {reason}' if reason else ''}")
        self.code = code
        self.reason = reason
        self.ours = ours


class HandshakeRejected(Exception):
    """The server answered the upgrade request with an HTTP status instead of 101."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"WebSocket upgrade refused with HTTP {status_code}")
        self.status_code = status_code


class HandshakeFailed(Exception):
    """The upgrade could not complete: the peer closed, or its answer was not HTTP."""


class ClientWebSocket:
    """One client WebSocket on a connected trio stream."""

    def __init__(self, stream: trio.abc.Stream, *, max_message_size: int) -> None:
        self._stream = stream
        self._ws = WSConnection(ConnectionType.CLIENT)
        self._max_message_size = max_message_size
        self._parts: list[Message] = []
        self._part_size = 0
        self._ready: list[Message] = []
        self._closed: WebSocketClosed | None = None  # raised once ``_ready`` is delivered
        self.subprotocol: str | None = None

    async def open(self, host: str, path: str, subprotocols: list[str]) -> None:
        """Send the upgrade request and read the answer (the caller bounds the time)."""
        request = Request(host=host, target=path, subprotocols=subprotocols)
        try:
            await self._stream.send_all(self._ws.send(request))
            while True:
                data = await self._stream.receive_some(RECEIVE_SIZE)
                if not data:
                    raise HandshakeFailed("the server closed the connection during the upgrade")
                self._ws.receive_data(bytes(data))
                for event in self._ws.events():
                    if isinstance(event, AcceptConnection):
                        self.subprotocol = event.subprotocol
                        # Messages sent right after the 101 may already be in wsproto's buffer.
                        await self._take(self._ws.events())
                        return
                    if isinstance(event, RejectConnection):
                        raise HandshakeRejected(event.status_code)
                    if not isinstance(event, RejectData):  # pragma: no cover - wsproto's
                        raise HandshakeFailed(f"unexpected {type(event).__name__} in the upgrade")
        except ProtocolError as exc:
            raise HandshakeFailed(f"the upgrade answer is not valid: {exc}") from None
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise HandshakeFailed(str(exc) or type(exc).__name__) from None

    async def receive(self) -> list[Message]:
        """Every complete message one socket read brought (at least one), in order.

        Raises ``WebSocketClosed`` once the messages received before the close are delivered.
        """
        while not self._ready:
            if self._closed is not None:
                raise self._closed
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                data = b""
            if not data:
                self._closed = WebSocketClosed(ABNORMAL_CLOSURE, "connection lost")
                continue
            self._ws.receive_data(bytes(data))
            await self._take(self._ws.events())
        ready, self._ready = self._ready, []
        return ready

    async def send(self, text: str) -> None:
        """Send one text message."""
        if self._closed is not None or self._ws.state is not ConnectionState.OPEN:
            raise self._closed or WebSocketClosed(ABNORMAL_CLOSURE, "already closing")
        await self._write(self._ws.send(TextMessage(data=text)))

    async def close(self, code: int = NORMAL_CLOSURE, reason: str = "") -> None:
        """Send a close frame and read until the answer (the caller bounds the wait)."""
        if self._ws.state is ConnectionState.OPEN and self._closed is None:
            try:
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
            except WebSocketClosed:
                return
        while self._ws.state is ConnectionState.LOCAL_CLOSING and self._closed is None:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                return
            if not data:
                return
            self._ws.receive_data(bytes(data))
            await self._take(self._ws.events())  # the answer sets ``_closed``

    async def _take(self, events: Iterable[Event]) -> None:
        """Sort wsproto's events: messages to ``_ready``, pings answered, a close noted.

        A close (the peer's, or ours for a fault in its data) ends the sorting: what came
        before it is still delivered, nothing after it is read.
        """
        try:
            for event in events:
                if isinstance(event, TextMessage | BytesMessage):
                    await self._message_part(event.data, finished=event.message_finished)
                elif isinstance(event, Ping) and self._ws.state is ConnectionState.OPEN:
                    # (after our close frame wsproto sends nothing but the close: no pong)
                    await self._write(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    await self._on_close(event)
                if self._closed is not None:
                    return
        except WebSocketClosed:
            return  # the socket broke while answering: ``_closed`` says so

    async def _message_part(self, data: str | bytes | bytearray, *, finished: bool) -> None:
        self._part_size += _wire_size(data)
        if self._part_size > self._max_message_size:
            # Dropped now, not with this object: the exception that reports the close refers
            # back to it through its traceback, and such a cycle lives until the cyclic
            # collector runs (16 MiB per refused message).
            self._parts.clear()
            self._part_size = 0
            await self._close_ourselves(MESSAGE_TOO_BIG, "message too big")
            return
        self._parts.append(data if isinstance(data, str) else bytes(data))
        if finished:
            parts, self._parts, self._part_size = self._parts, [], 0
            if len(parts) == 1:
                self._ready.append(parts[0])
            elif isinstance(parts[0], str):
                self._ready.append("".join(cast("list[str]", parts)))
            else:
                self._ready.append(b"".join(cast("list[bytes]", parts)))

    async def _on_close(self, event: CloseConnection) -> None:
        state = self._ws.state
        if state is ConnectionState.REMOTE_CLOSING:  # the peer closed: answer, then report it
            self._closed = WebSocketClosed(event.code, event.reason or "")
            await self._write(self._ws.send(event.response()))
        elif state is ConnectionState.CLOSED:  # the answer to our own close
            self._closed = WebSocketClosed(event.code, event.reason or "", ours=True)
        else:  # still OPEN: wsproto could not parse the peer's frames (1002, 1007)
            await self._close_ourselves(event.code, event.reason or "")

    async def _close_ourselves(self, code: int, reason: str) -> None:
        """End the connection for a fault in the peer's data; nothing after it is read."""
        self._closed = WebSocketClosed(code, reason, ours=True)
        if self._ws.state is ConnectionState.OPEN:
            await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))

    async def _write(self, data: bytes) -> None:
        """Write to the socket; a broken one closes the WebSocket (code 1006)."""
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            self._closed = self._closed or WebSocketClosed(ABNORMAL_CLOSURE, "connection lost")
            raise self._closed from None
