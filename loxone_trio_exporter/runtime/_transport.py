"""The transport to one Miniserver: where to connect, the TCP/TLS stream, the two HTTP calls
before the WebSocket, and the WebSocket itself (trio-websocket over that stream).

Plain or TLS, which port, and which name the certificate must carry (protocol doc §1.3):
``tls = "off"``: HTTP and WebSocket on ``port``. ``tls = "on"``: HTTPS and WSS on ``tls_port`` for
everything, the first probe included. ``tls = "auto"``: the probe goes to ``port`` in plain HTTP
(it carries no credential); when ``jdev/cfg/apiKey`` answers ``httpsStatus: 1`` the rest of the
session (public key, WebSocket, login) goes over TLS to ``tls_port``.

A Miniserver's certificate names its CloudDNS host, never its IP address; so when ``host`` is an IP
the name checked is ``{ip-with-dashes}.{serial}.dyndns.loxonecloud.com`` while the connection
still goes to the IP (SNI and verification use the name). ``tls_server_name`` overrides it.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import attrs
import h11
import trio
import trio_websocket
import wsproto.utilities
from wsproto.frame_protocol import CloseReason

from ..config import MiniserverConfig
from ..errors import UnavailableError
from ..protocol import ResponseCode
from ._endings import SessionEnded, closed
from ._memory import release_free_memory
from ._messages import ReconnectReason

#: ``httpsStatus`` values of ``jdev/cfg/apiKey`` (§1.2).
HTTPS_AVAILABLE = 1
HTTPS_CERTIFICATE_EXPIRED = 2
#: Firmware from which a Miniserver takes commands in clear over TLS (§4.4).
CLEAR_COMMANDS_OVER_TLS = (11, 2)


@attrs.frozen
class Transport:
    """Where and how to connect: ``ssl_context`` None means plain TCP."""

    host: str
    port: int
    ssl_context: ssl.SSLContext | None = attrs.field(default=None, eq=False)
    server_name: str | None = None

    @property
    def secure(self) -> bool:
        return self.ssl_context is not None

    def describe(self) -> str:
        scheme = "wss" if self.secure else "ws"
        shown_host = f"[{self.host}]" if ":" in self.host else self.host
        name = (
            f" as {self.server_name}" if self.server_name and self.server_name != self.host else ""
        )
        return f"{scheme}://{shown_host}:{self.port}{name}"


def client_ssl_context(config: MiniserverConfig) -> ssl.SSLContext:
    """Verification as configured: the system's CAs, a pinned CA file, or none at all."""
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def cloud_dns_name(host: str, serial: str) -> str:
    """``192-168-1-77.504f94a00001.dyndns.loxonecloud.com`` for an IP; ``host`` otherwise."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return host
    compact_serial = serial.replace(":", "").lower()
    dashed = str(address).replace(".", "-").replace(":", "-")
    return f"{dashed}.{compact_serial}.dyndns.loxonecloud.com"


def probe_transport(config: MiniserverConfig, context: ssl.SSLContext | None) -> Transport:
    """Where the first ``jdev/cfg/apiKey`` goes (before the serial is known).

    With ``tls = "on"`` and an IP address, the CloudDNS name cannot be built before the serial is
    known, so this one unauthenticated request checks the certificate chain but not the name;
    everything after it, the login included, checks both.
    """
    if config.tls != "on" or context is None:
        return Transport(config.host, config.port)
    name = config.tls_server_name or None
    if name is None and cloud_dns_name(config.host, "") != config.host and context.check_hostname:
        unnamed = client_ssl_context(config)
        unnamed.check_hostname = False
        return Transport(config.host, config.tls_port, unnamed, None)
    return Transport(config.host, config.tls_port, context, name)


def session_transport(
    config: MiniserverConfig,
    context: ssl.SSLContext | None,
    *,
    https_status: int | None,
    serial: str,
) -> Transport:
    """Where the session goes, once ``apiKey`` told the serial and ``httpsStatus``."""
    use_tls = config.tls == "on" or (config.tls == "auto" and https_status == HTTPS_AVAILABLE)
    if not use_tls or context is None:
        return Transport(config.host, config.port)
    name = config.tls_server_name or cloud_dns_name(config.host, serial)
    return Transport(config.host, config.tls_port, context, name)


def commands_in_clear(transport: Transport, firmware: str) -> bool:
    """Over TLS, firmware 11.2 and later take commands without AES (no key exchange needed)."""
    return transport.secure and _version(firmware) >= CLEAR_COMMANDS_OVER_TLS


def _version(text: str) -> tuple[int, ...]:
    parts: list[int] = []
    for part in text.split("."):
        if not part.isdecimal():  # what int() reads (isdigit() also takes "²", which it does not)
            break
        parts.append(int(part))
    return tuple(parts)


# --- the stream and the two HTTP calls (``jdev/cfg/apiKey``, ``getPublicKey``) ---------------
# h11 over a trio stream, small on purpose: one GET, one response, the connection closed
# afterwards, everything under one deadline. Failures become ``UnavailableError`` in plain words
# (refused, timed out, TLS certificate not accepted), never a bare traceback.

#: The two answers are a few hundred bytes; anything near this is not a Miniserver.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024


class TlsError(UnavailableError):
    """The TLS handshake failed (a certificate not accepted, say): retrying soon will not help."""


#: Opens the stream to the Miniserver (TCP, TLS); tests pass in-memory streams instead.
StreamOpener = Callable[[], Awaitable[trio.abc.Stream]]


@attrs.frozen
class HttpResponse:
    status: int
    body: bytes


async def open_stream(
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None,
    server_hostname: str | None,
) -> trio.abc.Stream:
    """TCP (and TLS, with the handshake done) to ``host:port``; errors say what failed."""
    try:
        tcp = await trio.open_tcp_stream(host, port)
    except OSError as exc:
        raise UnavailableError(why_not_connected(exc, host, port)) from None
    if ssl_context is None:
        return tcp
    stream = trio.SSLStream(tcp, ssl_context, server_hostname=server_hostname or host)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError as exc:
        await tcp.aclose()
        cause = exc.__cause__
        if isinstance(cause, ssl.SSLCertVerificationError):
            raise TlsError(
                f"TLS certificate of {host}:{port} not accepted: {cause.verify_message}; "
                "set tls_server_name, pin it with tls_ca_file, or set tls_verify = false"
            ) from None
        raise TlsError(f"TLS handshake with {host}:{port} failed: {cause or exc}") from None
    return stream


#: What each way of failing to connect means, and what to check (errno -> cause, hint).
_CONNECT_FAILURES = {
    errno.ECONNREFUSED: (
        "connection refused: nothing listens there",
        "check host and port (a Miniserver serves HTTP on port 80 unless it was changed)",
    ),
    errno.ETIMEDOUT: (
        "no answer (timed out)",
        "is the Miniserver switched on, and reachable from here (firewall, VLAN)?",
    ),
    errno.EHOSTUNREACH: (
        "no route to the host",
        "check the network between the exporter and the Miniserver (VLAN, firewall, VPN)",
    ),
    errno.ENETUNREACH: (
        "network unreachable",
        "check the network between the exporter and the Miniserver (VLAN, firewall, VPN)",
    ),
}


def why_not_connected(exc: OSError, host: str, port: int) -> str:
    """A failed TCP connect in plain words, with what to check. trio reports "all attempts to
    connect failed" and keeps each attempt's error as the cause: the first known one says it."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return (
            f"cannot resolve {host!r} ({exc.strerror or exc}): check the host name, or give the "
            "Miniserver's IP address"
        )
    for attempt in _attempts(exc):
        known = _CONNECT_FAILURES.get(attempt.errno or 0)
        if known is not None:
            cause, hint = known
            return f"cannot connect to {where}: {cause}; {hint}"
    return f"cannot connect to {where}: {exc.strerror or exc}"


def _attempts(exc: BaseException) -> Iterator[OSError]:
    if isinstance(exc, OSError):
        yield exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _attempts(inner)
    if exc.__cause__ is not None:
        yield from _attempts(exc.__cause__)


async def http_get(
    host: str,
    port: int,
    path: str,
    *,
    timeout_seconds: float,
    ssl_context: ssl.SSLContext | None = None,
    server_hostname: str | None = None,
    opener: StreamOpener | None = None,
) -> HttpResponse:
    """GET ``path``; ``UnavailableError`` on any network failure or timeout.

    ``opener`` replaces the TCP/TLS connection to ``host:port`` (which still names the Host).
    """
    try:
        with trio.fail_after(timeout_seconds):
            if opener is not None:
                stream = await opener()
            else:
                stream = await open_stream(
                    host, port, ssl_context=ssl_context, server_hostname=server_hostname
                )
            async with stream:
                return await _exchange(stream, host, port, path)
    except trio.TooSlowError:
        raise UnavailableError(
            f"no answer from {host}:{port} within {timeout_seconds:g} s (GET {path}): a "
            "Miniserver that stalls, or another service on that port?"
        ) from None
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError) as exc:
        raise UnavailableError(f"HTTP GET {path} on {host}:{port} failed: {exc}") from None


async def _exchange(stream: trio.abc.Stream, host: str, port: int, path: str) -> HttpResponse:
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET",
        target=path,
        headers=[
            ("Host", f"{host}:{port}"),
            ("Connection", "close"),
            ("User-Agent", "loxone-trio-exporter"),
        ],
    )
    await stream.send_all(connection.send(request) + (connection.send(h11.EndOfMessage()) or b""))
    status = 0
    body = bytearray()
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            connection.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > MAX_RESPONSE_BYTES:
                raise UnavailableError(f"answer to GET {path} is larger than 4 MiB")
        elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
            return HttpResponse(status, bytes(body))


# --- the WebSocket: trio-websocket over a stream we opened -----------------------------------

#: Real structure files run to several MiB; a value table of 10k states is 240 KiB.
MAX_MESSAGE_SIZE = 16 * 1024 * 1024
WEBSOCKET_PATH = "/ws/rfc6455"
SUBPROTOCOL = "remotecontrol"
RECEIVE_SIZE = 65536
#: How long a closing handshake may take: a stop or a reconnect must be quick.
CLOSE_WAIT_SECONDS = 0.2
#: The codes wsproto and trio-websocket close with when *we* fail the connection for the
#: peer's data: frames that break RFC 6455, text that is not UTF-8, a message over the limit.
_OUR_FAULT_CODES = frozenset(
    {
        CloseReason.PROTOCOL_ERROR,
        CloseReason.INVALID_FRAME_PAYLOAD_DATA,
        CloseReason.MESSAGE_TOO_BIG,
    }
)


class _MeteredStream(trio.abc.Stream):
    """The stream under trio-websocket, watched for two things the library does not tell:

    - **bytes on the wire per message.** trio-websocket's ``max_message_size`` counts the
      characters of a text message, and a character of UTF-8 takes up to four bytes, so a text
      message could hold four times the limit. Its reader hands us one message at a time and
      reads on only once we took it (queue size 0), so the bytes read since we took the last
      message belong to the next one, plus at most one read of the message after it. Over the
      limit plus that one read, the stream breaks: memory stays bounded by the limit in bytes.
    - **the end of the stream during the upgrade**: trio-websocket then waits for an answer
      that cannot come; ``on_end`` ends that wait at once.
    """

    def __init__(self, stream: trio.abc.Stream, max_message_size: int) -> None:
        self._stream = stream
        self._allowed = max_message_size + RECEIVE_SIZE
        self._received = 0
        self.over_limit = False
        self.ended = False
        self.on_end: Callable[[], object] | None = None

    def message_taken(self) -> None:
        self._received = 0

    @property
    def received(self) -> int:
        """Bytes read since the last message was taken."""
        return self._received

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        try:
            data = await self._stream.receive_some(max_bytes)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._end()
            raise
        if not data:
            self._end()
            return data
        self._received += len(data)
        if self._received > self._allowed:
            self.over_limit = True
            self._end()
            raise trio.BrokenResourceError("message over the size limit")
        return data

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        self._end()
        await self._stream.aclose()

    def _end(self) -> None:
        self.ended = True
        if self.on_end is not None:
            self.on_end()


class MiniserverWebSocket:
    """One open WebSocket to a Miniserver. Every way it can end is a ``SessionEnded``."""

    def __init__(
        self,
        connection: trio_websocket.WebSocketConnection,
        stream: _MeteredStream,
        *,
        max_message_size: int,
        update_retry: float,
    ) -> None:
        self._connection = connection
        self._stream = stream
        self._max_message_size = max_message_size
        self._update_retry = update_retry
        self._too_big = False

    @property
    def bytes_arriving(self) -> int:
        """Bytes read of the message not taken yet (the structure file while it downloads)."""
        return self._stream.received

    async def receive(self) -> str | bytes:
        """The next message; ``SessionEnded`` once the messages before a close are read."""
        closed: trio_websocket.ConnectionClosed | None = None
        message: str | bytes = ""
        try:
            message = await self._connection.get_message()
        except trio_websocket.ConnectionClosed as exc:
            closed = exc
        if closed is not None:
            # Raised outside the ``except``: an exception raised in it would keep the library's
            # exception (and through its traceback, the connection and any half-received
            # message) as its context.
            reason, closed = closed.reason, None
            raise self._ending(reason)
        self._stream.message_taken()
        if isinstance(message, str) and self._text_too_big(message):
            self._too_big = True
            with trio.move_on_after(CLOSE_WAIT_SECONDS):
                await self._connection.aclose(CloseReason.MESSAGE_TOO_BIG, "message too big")
            raise self._ending(None)
        return message

    async def send(self, text: str) -> None:
        """Send one command; a socket closed meanwhile ends the session."""
        try:
            await self._connection.send_message(text)
        except trio_websocket.ConnectionClosed as exc:
            raise self._ending(exc.reason) from None

    async def close(self) -> None:
        """Send a close frame and wait a little for the answer (never long: a stop is quick)."""
        with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_WAIT_SECONDS):
            await self._connection.aclose()

    def _text_too_big(self, text: str) -> bool:
        # Characters count once, bytes up to four times; only a long text can be over.
        return (
            len(text) * 4 > self._max_message_size
            and not text.isascii()
            and len(text.encode("utf-8")) > self._max_message_size
        )

    def _ending(self, reason: trio_websocket.CloseReason | None) -> SessionEnded:
        if self._too_big or self._stream.over_limit:
            return closed(CloseReason.MESSAGE_TOO_BIG, "message too big", ours=True, update_retry=0)
        if reason is None:
            return closed(CloseReason.ABNORMAL_CLOSURE, "", update_retry=self._update_retry)
        return closed(
            reason.code,
            reason.reason or "",
            ours=reason.code in _OUR_FAULT_CODES,
            update_retry=self._update_retry,
        )


@contextlib.asynccontextmanager
async def open_websocket(
    stream: trio.abc.Stream,
    host: str,
    *,
    upgrade_seconds: float,
    update_retry: float,
    booting_retry: float,
    max_message_size: int = MAX_MESSAGE_SIZE,
) -> AsyncIterator[MiniserverWebSocket]:
    """Upgrade ``stream`` (opened by us: TLS checks the CloudDNS name) to the Miniserver's
    WebSocket; closed with a close frame when the block ends. Failures are ``SessionEnded``."""
    metered = _MeteredStream(stream, max_message_size)
    ending: BaseException | None = None
    try:
        async with trio.open_nursery() as nursery:  # trio-websocket's reader task
            websocket = MiniserverWebSocket(
                await _upgrade(nursery, metered, host, upgrade_seconds, max_message_size),
                metered,
                max_message_size=max_message_size,
                update_retry=update_retry,
            )
            try:
                yield websocket
            finally:
                await websocket.close()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # trio's nursery wraps what its body raised: the caller wants the exception itself.
        leaves = list(_leaves(group))
        if len(leaves) != 1:
            raise
        ending = _as_ending(leaves[0], booting_retry)
        leaves.clear()  # their tracebacks hold the library's frames, and a refused message
    if ending is not None:
        if isinstance(ending, SessionEnded) and ending.protocol_error:
            # A refused message (over the limit, or malformed) leaves megabytes of freed
            # fragments in the heap: give them back now (issue 13, refused structures).
            release_free_memory()
        # Raised here, not in the ``except``: there its context would be the group, which
        # holds it, and that cycle (with a refused message in its frames) would live until the
        # cyclic collector runs.
        raise ending


async def _upgrade(
    nursery: trio.Nursery,
    stream: _MeteredStream,
    host: str,
    upgrade_seconds: float,
    max_message_size: int,
) -> trio_websocket.WebSocketConnection:
    with trio.move_on_after(upgrade_seconds) as waiting:
        stream.on_end = waiting.cancel
        connection = await trio_websocket.wrap_client_stream(
            nursery,
            stream,  # type: ignore[arg-type]  # any trio stream serves; the hint names two
            host,
            WEBSOCKET_PATH,
            subprotocols=[SUBPROTOCOL],
            message_queue_size=0,  # one message at a time: the byte meter relies on it
            max_message_size=max_message_size,
            receive_buffer_size=RECEIVE_SIZE,
        )
        stream.on_end = None
        return connection
    stream.on_end = None
    if stream.ended:
        raise SessionEnded(
            ReconnectReason.UNREACHABLE,
            "WebSocket upgrade failed: the server ended the connection without a WebSocket "
            "answer (is this a Miniserver?)",
        )
    raise SessionEnded(
        ReconnectReason.UNREACHABLE, f"WebSocket upgrade not answered within {upgrade_seconds:g} s"
    )


def _as_ending(exc: BaseException, booting_retry: float) -> BaseException:
    """What trio-websocket's reader task raises about the upgrade ends the session: a refusal
    with an HTTP status, or an answer that is not HTTP (h11 and wsproto say so)."""
    if isinstance(exc, h11.ProtocolError | wsproto.utilities.ProtocolError):
        return SessionEnded(
            ReconnectReason.UNREACHABLE,
            f"WebSocket upgrade failed: the answer is not HTTP ({exc}); is this a Miniserver?",
        )
    if not isinstance(exc, trio_websocket.ConnectionRejected):
        return exc
    if exc.status_code == ResponseCode.SERVICE_UNAVAILABLE:
        return SessionEnded(
            ReconnectReason.BOOTING,
            "booting (WebSocket upgrade answered 503)",
            retry_after=booting_retry,
            level=logging.INFO,
        )
    return SessionEnded(
        ReconnectReason.UNREACHABLE, f"WebSocket upgrade refused with HTTP {exc.status_code}"
    )


def _leaves(group: BaseExceptionGroup) -> Iterator[BaseException]:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            yield from _leaves(exc)
        else:
            yield exc
