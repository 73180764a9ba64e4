"""One OTLP/HTTP request: POST the protobuf body, read the status (h11 over a trio stream).

h11 is already a dependency (the exporter's HTTP calls to the Miniserver use it), so the push
needs no HTTP client library. One connection per push, closed afterwards: a push a minute does
not pay for keeping a connection alive, and a half-dead kept connection is a failure mode less.

Nothing here logs or puts a header value into an error: the headers carry a backend's secret.
"""

from __future__ import annotations

import ssl
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

import attrs
import h11
import trio

from ..errors import LoxoneExporterError

CONTENT_TYPE_PROTOBUF = "application/x-protobuf"
#: An answer's body is read up to this many bytes (a status is all the push needs).
MAX_RESPONSE_BYTES = 64 * 1024
#: Statuses the OTLP/HTTP specification says to retry ("Failures" / "Retryable Response Codes").
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})
_USER_AGENT = "loxone-trio-exporter"

#: Opens the TCP stream to ``(host, port)``; tests pass one over memory streams.
OpenStream = Callable[[str, int], Awaitable[trio.abc.Stream]]


class PushFailed(LoxoneExporterError):
    """A push did not reach the endpoint or was refused; the message holds no header value.

    ``retryable``: worth trying again (unreachable, too slow, or a status the OTLP specification
    calls retryable); otherwise the endpoint refused this body for good (400, 401, 413, ...).
    """

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message)
        self.retryable = retryable


@attrs.frozen
class Endpoint:
    """Where pushes go, split once from the configured URL."""

    tls: bool
    host: str
    port: int
    target: str  # path and query, as the request line carries them

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """``http(s)://host[:port][/path][?query]``; a URL with no path gets ``/v1/metrics``.

        The config checked the URL, so this only splits it.
        """
        parts = urlsplit(url)
        tls = parts.scheme == "https"
        path = parts.path if parts.path not in ("", "/") else "/v1/metrics"
        target = f"{path}?{parts.query}" if parts.query else path
        return cls(tls, parts.hostname or "", parts.port or (443 if tls else 80), target)

    def shown(self) -> str:
        """The URL for log lines, without its query (a backend may put a key there)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        path = self.target.partition("?")[0]
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{path}"


async def open_tcp(host: str, port: int) -> trio.abc.Stream:
    return await trio.open_tcp_stream(host, port)


async def post_export(
    endpoint: Endpoint,
    body: bytes,
    *,
    gzipped: bool,
    headers: Mapping[str, str],
    timeout_seconds: float,
    ssl_context: ssl.SSLContext | None = None,
    open_stream: OpenStream = open_tcp,
) -> None:
    """POST ``body`` to ``endpoint`` within ``timeout_seconds``; ``PushFailed`` unless 2xx."""
    try:
        with trio.fail_after(timeout_seconds):
            status = await _exchange(
                endpoint,
                body,
                gzipped=gzipped,
                headers=headers,
                ssl_context=ssl_context,
                open_stream=open_stream,
            )
    except trio.TooSlowError:
        raise PushFailed(f"no answer within {timeout_seconds:g} s", retryable=True) from None
    except (OSError, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
        # OSError includes ssl.SSLError (a certificate the system does not trust, say).
        raise PushFailed(_describe(exc), retryable=True) from None
    except h11.ProtocolError as exc:
        raise PushFailed(f"not an HTTP/1.1 answer ({exc})", retryable=True) from None
    if not 200 <= status < 300:
        raise PushFailed(f"HTTP status {status}", retryable=status in RETRYABLE_STATUSES)


async def _exchange(
    endpoint: Endpoint,
    body: bytes,
    *,
    gzipped: bool,
    headers: Mapping[str, str],
    ssl_context: ssl.SSLContext | None,
    open_stream: OpenStream,
) -> int:
    stream = await open_stream(endpoint.host, endpoint.port)
    if endpoint.tls:
        # The pusher passes one context for all pushes: making one reads the system's CA store.
        context = ssl_context or ssl.create_default_context()
        stream = trio.SSLStream(stream, context, server_hostname=endpoint.host)
    async with stream:
        if isinstance(stream, trio.SSLStream):
            await stream.do_handshake()
        connection = h11.Connection(h11.CLIENT)
        request_headers = [
            ("Host", _host_port(endpoint)),
            ("User-Agent", _USER_AGENT),
            ("Content-Type", CONTENT_TYPE_PROTOBUF),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
        ]
        if gzipped:
            request_headers.append(("Content-Encoding", "gzip"))
        request_headers += headers.items()
        data = connection.send(
            h11.Request(method="POST", target=endpoint.target, headers=request_headers)
        )
        data = (data or b"") + (connection.send(h11.Data(data=body)) or b"")
        data += connection.send(h11.EndOfMessage()) or b""
        await stream.send_all(data)
        return await _read_status(connection, stream)


async def _read_status(connection: h11.Connection, stream: trio.abc.Stream) -> int:
    """The response's status, after reading (and dropping) at most ``MAX_RESPONSE_BYTES``."""
    status = 0
    received = 0
    while True:
        event = connection.next_event()
        if event is h11.NEED_DATA:
            chunk = await stream.receive_some(16384)
            if not chunk and status:
                return status  # closed after the head: the status is what counts
            connection.receive_data(bytes(chunk))
        elif isinstance(event, h11.Response):
            status = event.status_code
        elif isinstance(event, h11.Data):
            received += len(event.data)
            if received > MAX_RESPONSE_BYTES:
                return status
        elif isinstance(event, h11.EndOfMessage):
            return status
        elif isinstance(event, h11.ConnectionClosed):
            raise trio.BrokenResourceError("connection closed before an answer")


def _host_port(endpoint: Endpoint) -> str:
    host = f"[{endpoint.host}]" if ":" in endpoint.host else endpoint.host
    return f"{host}:{endpoint.port}"


def _describe(exc: BaseException) -> str:
    # trio.SSLStream reports a failed handshake as BrokenResourceError caused by the SSL error.
    if isinstance(exc, trio.BrokenResourceError) and isinstance(exc.__cause__, OSError):
        exc = exc.__cause__
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not accepted ({exc.verify_message})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
