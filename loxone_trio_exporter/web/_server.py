"""Hypercorn wiring for the web app, inside the caller's nursery (stack notes: "Wiring").

With a web config, the app is wrapped by ``protect`` (basic auth, headers) and, when the config
has ``tls_server_config``, served over HTTPS. Hypercorn builds one ``SSLContext`` at start and
hands it to every accepted connection; here that context is a stand-in whose ``wrap_bio`` (the one
call through which an ``SSLObject`` is made for a connection) asks the web config for the context
in force, so new connections pick up a changed certificate, key, client CA or TLS setting while
established ones keep theirs.

``http_server_config.http2: false`` switches HTTP/2 off everywhere. Over TLS the context's ALPN
already leaves ``h2`` out; on an HTTP/1.1 connection (plain or TLS) Hypercorn would still switch
on an ``Upgrade: h2c`` request or the prior-knowledge preface, and has no setting against that,
so its HTTP/1.1 protocol is replaced by a subclass that asks the web config in force first.

When the process runs out of file descriptors, trio's accept loop (``trio.serve_listeners``,
which Hypercorn serves with) logs an error with a full traceback for every retry, ten a second;
while a server runs, a filter on that logger turns this into one warning line per interval.
"""

from __future__ import annotations

import errno
import logging
import os
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import h11
import hypercorn.protocol
import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.events import Closed
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.trio import serve

from ..logs import WEB_LOGGER
from ._asgi import AsgiApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    # Imported by ``serve_web`` when there is a web config: without one, neither PyYAML nor
    # bcrypt is loaded.
    from ._web_config import WebConfigFile
    from ._web_config_source import WebConfigProvider

__all__ = ["AsgiApp", "Message", "Receive", "Scope", "Send", "serve_web", "shield_sends"]

KEEP_ALIVE_TIMEOUT_SECONDS = 5.0
GRACEFUL_TIMEOUT_SECONDS = 1.0
#: A client that opens TCP and never finishes the TLS handshake is dropped after this long
#: (Hypercorn's default is a minute).
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: At most one "cannot accept" warning per this long; the next one says how many were left out.
ACCEPT_ERROR_WARNING_INTERVAL_SECONDS = 10.0
#: Where trio's accept loop reports accept(2) failing for lack of resources (it then retries).
ACCEPT_ERROR_LOGGER = "trio.serve_listeners"
_ACCEPT_ERROR_CAUSES = {
    errno.EMFILE: ("out of file descriptors", "; raise the limit with ulimit -n"),
    errno.ENFILE: ("the system is out of file descriptors", "; see fs.file-max"),
    errno.ENOMEM: ("out of memory", ""),
    errno.ENOBUFS: ("out of socket buffers", ""),
}


def shield_sends(app: AsgiApp) -> AsgiApp:
    """Run every ASGI ``send`` shielded from cancellation.

    Quart-Trio cancels its per-request nursery on ``http.disconnect``, which Hypercorn delivers
    from inside the app's last ``send``; unshielded, that cancels the send itself and the idle
    keep-alive connection is never closed, so every shutdown waits for the full graceful timeout
    while a Prometheus server holds a connection (stack notes, pitfall 1).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def shielded_send(message: Message) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive, shielded_send)

    return wrapped


def _always() -> bool:
    return True


class _ServerConfig(HypercornConfig):
    """Hypercorn's config with the TLS context supplied from outside, and HTTP/2 switchable.

    Hypercorn would build its context from ``certfile``/``keyfile``/``ca_certs``/``verify_mode``
    and trust the system's CAs for client certificates; the web config needs its own rules
    (client auth types, TLS versions, ciphers, allowed SANs), so the context is made elsewhere.
    ``http2_allowed`` is asked per request, so a changed web config applies to the next one.
    """

    def __init__(
        self, ssl_context: ssl.SSLContext | None, http2_allowed: Callable[[], bool] = _always
    ) -> None:
        super().__init__()
        self._ssl_context = ssl_context
        self.http2_allowed = http2_allowed

    @property
    def ssl_enabled(self) -> bool:
        return self._ssl_context is not None

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._ssl_context


class _ContextInForce(ssl.SSLContext):
    """Makes each new connection's ``SSLObject`` from the web config's context in force."""

    def __new__(cls, source: WebConfigProvider) -> _ContextInForce:
        return super().__new__(cls, ssl.PROTOCOL_TLS_SERVER)

    def __init__(self, source: WebConfigProvider) -> None:
        self._source = source

    def wrap_bio(
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        context = self._source.current().ssl_context
        # The source refuses a new version that switches TLS off, so there is always one.
        assert context is not None
        return context.wrap_bio(
            incoming,
            outgoing,
            server_side=server_side,
            server_hostname=server_hostname,
            session=session,
        )


class _H11ProtocolHttp2Switchable(H11Protocol):
    """Hypercorn's HTTP/1.1 protocol, leaving HTTP/1.1 only when the web config allows HTTP/2.

    With HTTP/2 off an ``Upgrade: h2c`` header is ignored (the request is answered in HTTP/1.1,
    as RFC 9110, 7.8 allows) and the prior-knowledge preface (``PRI * HTTP/2.0``) is answered
    400 and the connection closed, as for any request that is not HTTP/1.1. Servers started
    with any other config behave exactly as Hypercorn's own protocol.
    """

    _preface_refused = False

    async def _check_protocol(self, event: h11.Request) -> None:
        if _http2_allowed(self.config):
            await super()._check_protocol(event)
        elif event.method == b"PRI" and event.target == b"*":
            await self._refuse_preface()

    async def _refuse_preface(self) -> None:
        self._preface_refused = True
        await self._send_error_response(400)  # with ``connection: close``
        await self.send(Closed())

    async def _create_stream(self, request: h11.Request) -> None:
        # Hypercorn goes on to hand the request to the app; a refused preface has no app.
        if not self._preface_refused:
            await super()._create_stream(request)


def _http2_allowed(config: HypercornConfig) -> bool:
    return not isinstance(config, _ServerConfig) or config.http2_allowed()


def _http2_in_force(source: WebConfigProvider) -> bool:
    return source.current().http2


def _use_http2_switchable_h11_protocol() -> None:
    """Make Hypercorn build our HTTP/1.1 protocol for every new connection.

    ``ProtocolWrapper`` looks ``H11Protocol`` up in ``hypercorn.protocol`` for each connection
    and offers no other hook. The overridden methods are Hypercorn internals (0.18): fail at
    start rather than serve HTTP/2 that was switched off, should a new version rename them.
    """
    for name in ("_check_protocol", "_create_stream", "_send_error_response"):
        if not callable(getattr(H11Protocol, name, None)):
            raise RuntimeError(f"this Hypercorn has no H11Protocol.{name}: cannot turn h2c off")
    hypercorn.protocol.H11Protocol = _H11ProtocolHttp2Switchable  # type: ignore[attr-defined]


class AcceptErrorDigest(logging.Filter):
    """Turns trio's accept-error records into one warning line per interval, no traceback.

    Installed on ``ACCEPT_ERROR_LOGGER`` while at least one server runs. Running out of
    descriptors is a state of the whole process, so there is one digest for all servers; its
    lines name every address served. ``clock`` is trio's: the records come from the accept loop.
    """

    def __init__(
        self,
        *,
        interval_seconds: float = ACCEPT_ERROR_WARNING_INTERVAL_SECONDS,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        super().__init__()
        self._interval_seconds = interval_seconds
        self._clock = clock
        self._servers: list[list[str]] = []
        self._reset()

    def _reset(self) -> None:
        self._next_warning_at = float("-inf")
        self._left_out = 0

    @contextmanager
    def serving(self, addresses: list[str]) -> Iterator[None]:
        """Name ``addresses`` (a list the server may update) in warnings while the block runs."""
        logger = logging.getLogger(ACCEPT_ERROR_LOGGER)
        if not self._servers:
            logger.addFilter(self)
        self._servers.append(addresses)
        try:
            yield
        finally:
            self._servers = [server for server in self._servers if server is not addresses]
            if not self._servers:
                logger.removeFilter(self)
                self._reset()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if not isinstance(error, OSError) or error.errno not in _ACCEPT_ERROR_CAUSES:
            return True  # not an accept error: leave it as it is
        now = self._clock()
        if now < self._next_warning_at:
            self._left_out += 1
            return False
        record.msg, record.args = self._warning(error.errno), None
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text = None, None
        self._next_warning_at = now + self._interval_seconds
        self._left_out = 0
        # trio logged at ERROR; a log level of "error" asks for no warnings.
        return logging.getLogger(record.name).isEnabledFor(logging.WARNING)

    def _warning(self, code: int) -> str:
        cause, advice = _ACCEPT_ERROR_CAUSES[code]
        addresses = ", ".join(address for server in self._servers for address in server)
        message = (
            f"{cause} ({errno.errorcode[code]}: {os.strerror(code)}) accepting connections on "
            f"{addresses}; retrying{advice}"
        )
        if self._left_out:
            message += f" ({self._left_out} more since the last warning)"
        return message


_ACCEPT_ERRORS = AcceptErrorDigest()


def hypercorn_config(
    listen: list[str],
    ssl_context: ssl.SSLContext | None = None,
    http2_allowed: Callable[[], bool] = _always,
) -> HypercornConfig:
    config = _ServerConfig(ssl_context, http2_allowed)
    config.bind = list(listen)
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_SECONDS
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    config.ssl_handshake_timeout = TLS_HANDSHAKE_TIMEOUT_SECONDS
    config.accesslog = None
    # The default error logger prints every line twice once logging is configured.
    config.errorlog = logging.getLogger(f"{WEB_LOGGER}.server")
    return config


async def serve_web(
    app: AsgiApp,
    listen: list[str],
    shutdown: trio.Event,
    *,
    web_config: WebConfigFile | WebConfigProvider | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on every ``listen`` address until ``shutdown`` is set.

    ``web_config`` (a checked ``WebConfigFile``, or a ``WebConfigSource`` that follows changes to
    the file) adds basic auth, response headers and, with ``tls_server_config``, HTTPS.
    ``task_status`` receives the bound URLs (with real ports when 0 was asked for; ``https://``
    when TLS is on).
    """
    ssl_context: ssl.SSLContext | None = None
    http2_allowed: Callable[[], bool] = _always
    if web_config is not None:
        from ._auth import protect  # noqa: PLC0415 - see the imports at the top
        from ._web_config import WebConfigFile  # noqa: PLC0415
        from ._web_config_source import FixedWebConfig  # noqa: PLC0415

        source = FixedWebConfig(web_config) if isinstance(web_config, WebConfigFile) else web_config
        app = protect(app, source)
        if source.current().tls is not None:
            ssl_context = _ContextInForce(source)
        http2_allowed = partial(_http2_in_force, source)
    _use_http2_switchable_h11_protocol()
    config = hypercorn_config(listen, ssl_context, http2_allowed)
    asgi_app: Any = shield_sends(app)  # hypercorn's precise ASGI types; ours is the same shape
    serve_app = partial(serve, asgi_app, config, shutdown_trigger=shutdown.wait)
    addresses = list(listen)
    with _ACCEPT_ERRORS.serving(addresses):
        async with trio.open_nursery() as nursery:
            bound = await nursery.start(serve_app)
            addresses[:] = bound  # the real ports, once known
            task_status.started(list(bound))
