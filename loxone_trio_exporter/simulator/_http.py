"""Just enough HTTP/1.1 for the simulator's port, on h11 over a trio stream.

A real Miniserver serves HTTP and the WebSocket on one port, so the simulator reads the first
request of every connection itself and either answers it or hands the connection over to the
WebSocket side. Owning the bytes (rather than going through ASGI) is what lets the simulator fail
the way a Miniserver fails: cut a connection without a close frame, refuse an upgrade with 503.
"""

from __future__ import annotations

import base64
import contextlib
import json
from urllib.parse import parse_qs, unquote, urlsplit

import attrs
import h11
import trio

MAX_REQUEST_BYTES = 64 * 1024
READ_CHUNK = 65536


@attrs.frozen
class Request:
    """One parsed request. ``path`` is percent-decoded; ``raw_path`` is as sent."""

    method: str
    target: str
    raw_path: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    header_list: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    @property
    def wants_websocket(self) -> bool:
        return "websocket" in self.header("upgrade").lower()

    def basic_credentials(self) -> tuple[str, str] | None:
        """``(user, password)`` from ``Authorization: Basic``, or ``None``."""
        scheme, _, value = self.header("authorization").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, sep, password = base64.b64decode(value).decode("utf-8").partition(":")
        except ValueError:
            return None
        return (user, password) if sep else None

    def bearer_token(self) -> str | None:
        scheme, _, value = self.header("authorization").partition(" ")
        return value.strip() or None if scheme.lower() == "bearer" else None


class HttpConnection:
    """The HTTP side of one accepted connection."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self._h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_REQUEST_BYTES)

    async def next_request(self) -> Request | None:
        """The next complete request, or ``None`` when the client closed or sent garbage."""
        if self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE:
            self._h11.start_next_cycle()
        head: h11.Request | None = None
        body = bytearray()
        while True:
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError:
                await self._reject_malformed()
                return None
            if event is h11.NEED_DATA:
                try:
                    data = await self.stream.receive_some(READ_CHUNK)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return None
                self._h11.receive_data(bytes(data))
                continue
            if isinstance(event, h11.Request):
                head = event
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) > MAX_REQUEST_BYTES:
                    await self.respond(413, {"error": "request body too large"})
                    return None
            elif isinstance(event, h11.EndOfMessage) and head is not None:
                return _make_request(head, bytes(body))
            elif isinstance(event, h11.ConnectionClosed | h11.PAUSED):
                return None

    @property
    def switching_protocols(self) -> bool:
        """Whether h11 stopped at an upgrade request (the WebSocket side takes over)."""
        return self._h11.their_state is h11.MIGHT_SWITCH_PROTOCOL  # type: ignore[attr-defined]

    @property
    def trailing_data(self) -> bytes:
        return bytes(self._h11.trailing_data[0])

    async def respond(
        self,
        status: int,
        body: object,
        *,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
        close: bool = False,
    ) -> None:
        """Send one response; ``body`` is JSON-encoded unless it is ``str`` or ``bytes``."""
        if isinstance(body, bytes):
            payload = body
        elif isinstance(body, str):
            payload = body.encode("utf-8")
        else:
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        all_headers = [
            ("Content-Type", content_type),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-cache"),
            *(headers or []),
        ]
        if close:
            all_headers.append(("Connection", "close"))
        try:
            data = self._h11.send(h11.Response(status_code=status, headers=all_headers))
            data = (data or b"") + (self._h11.send(h11.Data(data=payload)) or b"")
            data += self._h11.send(h11.EndOfMessage()) or b""
        except h11.LocalProtocolError:
            return  # the client's request put h11 in a state where no response is possible
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self.stream.send_all(data)

    @property
    def keep_alive(self) -> bool:
        return self._h11.our_state is h11.DONE and self._h11.their_state is h11.DONE

    async def _reject_malformed(self) -> None:
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            await self.respond(400, {"error": "malformed HTTP request"}, close=True)


def _make_request(head: h11.Request, body: bytes) -> Request:
    target = head.target.decode("ascii", "replace")
    parts = urlsplit(target)
    header_list = list(head.headers)
    headers: dict[str, str] = {}
    for name, value in header_list:
        key = name.decode("ascii", "replace").lower()
        text = value.decode("latin-1")
        headers[key] = f"{headers[key]}, {text}" if key in headers else text
    return Request(
        method=head.method.decode("ascii", "replace"),
        target=target,
        raw_path=parts.path,
        path=unquote(parts.path),
        query=parse_qs(parts.query),
        headers=headers,
        header_list=header_list,
        body=body,
    )
