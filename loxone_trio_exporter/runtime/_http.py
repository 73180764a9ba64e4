"""The exporter's two HTTP calls (``jdev/cfg/apiKey``, ``getPublicKey``): h11 over a trio stream.

Small on purpose: one GET, one response, the connection closed afterwards, everything under one
deadline. Failures become ``UnavailableError`` with a message that says what happened in plain
words (refused, timed out, TLS certificate not accepted), never a bare traceback.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable

import attrs
import h11
import trio

from ..errors import UnavailableError

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
        raise UnavailableError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from None
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
            f"no answer from {host}:{port} within {timeout_seconds:g} s (GET {path})"
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
