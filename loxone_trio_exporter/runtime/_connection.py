"""One Miniserver connection: a thin trio task around the sans-IO ``ClientSession``.

The task probes the Miniserver over HTTP (``jdev/cfg/apiKey``; 503 means it is booting),
fetches its public key, opens the WebSocket itself (our own TCP/TLS stream wrapped by
trio-websocket, under one deadline, with a 16 MiB message limit: stack notes, pitfall 2), feeds
every message to the session and forwards what the session decodes to the state owner. When a
session ends for any reason it reports why, waits a jittered backoff and starts again, forever.

Timers (issue 4): a ``keepalive`` every 30 s; no answer within 15 s, or nothing at all received
for 60 s, ends the session. The login itself is bounded by the same silence timer.

Secrets: the password and tokens live in the ``ClientSession`` and in ``_token``; no log line,
message or exception text built here contains them (tests capture every log line to prove it).
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import time
from collections.abc import Callable

import attrs
import trio
import trio_websocket

from ..backoff import Backoff
from ..config import MiniserverConfig
from ..errors import RemoteProtocolError, StructureError, UnavailableError
from ..protocol import (
    DaytimerStatesReceived,
    KeepaliveReceived,
    OutOfService,
    SessionKey,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
    parse_api_key_value,
    parse_ll_reply,
)
from ..protocol._codes import CloseCode, ResponseCode
from ..protocol._session import (
    Authenticated,
    ClientSession,
    SendCommand,
    SessionEvent,
    SessionFailed,
    StoredToken,
    StructureLoaded,
    StructureUnchanged,
    TokenAcquired,
    TokenRejected,
    UnexpectedReply,
    UpdatesEnabled,
)
from ..structure import StateIndex, Structure, build_state_index, load_structure
from ._http import HttpResponse, StreamOpener, http_get, open_stream
from ._messages import (
    ConnectionState,
    Message,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)

log = logging.getLogger(__name__)

MAX_MESSAGE_SIZE = 16 * 1024 * 1024  # real structure files exceed trio-websocket's 1 MiB default
WEBSOCKET_PATH = "/ws/rfc6455"
CLOSE_WAIT_SECONDS = 0.2
ABNORMAL_CLOSURE = 1006  # RFC 6455: what a client reports when the socket broke without a close
SUBPROTOCOL = "remotecontrol"
_TABLE_EVENTS = (
    ValueStatesReceived,
    TextStatesReceived,
    DaytimerStatesReceived,
    WeatherStatesReceived,
)


@attrs.frozen
class Timeouts:
    """Seconds; the defaults are issue 4's. Tests shrink them or run on virtual time."""

    connect: float = 10.0  # TCP + TLS + WebSocket upgrade, and each HTTP call
    keepalive_interval: float = 30.0
    keepalive_answer: float = 15.0
    silence: float = 60.0  # nothing at all received: the peer is gone
    booting_retry: float = 5.0  # apiKey answered 503: ask again after this long


class SessionEnded(Exception):
    """Internal: why one session ended, carried to the reconnect loop."""

    def __init__(
        self,
        reason: ReconnectReason,
        detail: str,
        *,
        auth_failure: bool = False,
        protocol_error: bool = False,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.auth_failure = auth_failure
        self.protocol_error = protocol_error
        self.retry_after = retry_after  # overrides the backoff (a booting Miniserver)


def ssl_context_for(config: MiniserverConfig) -> ssl.SSLContext | None:
    """The TLS context for ``tls = "on"``; ``None`` for plain ws (``off``, and ``auto`` until
    it follows ``httpsStatus``)."""
    if config.tls != "on":
        return None
    context = ssl.create_default_context(cafile=config.tls_ca_file or None)
    if not config.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def parse_structure(text: str) -> tuple[Structure, StateIndex]:
    """Parse and index a structure file (run in a worker thread: large files take a while)."""
    structure = load_structure(text)
    return structure, build_state_index(structure)


class MiniserverConnection:
    """Keeps one Miniserver's session alive and reports everything to the state owner."""

    def __init__(
        self,
        config: MiniserverConfig,
        send_channel: trio.MemorySendChannel[Message],
        *,
        client_uuid: str,
        timeouts: Timeouts | None = None,
        random_source: random.Random | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        opener: StreamOpener | None = None,
    ) -> None:
        """``opener`` replaces the TCP/TLS connections (tests: in-memory streams on virtual
        time); ``random_bytes`` makes the session keys and salts."""
        self.config = config
        self.name = config.name
        self._send_channel = send_channel
        self._client_uuid = client_uuid
        self._timeouts = timeouts or Timeouts()
        self._random = random_source or random.Random()  # noqa: S311 - jitter, not secrets
        self._random_bytes = random_bytes
        self._ssl_context = ssl_context_for(config)
        self._opener = opener or self._open_stream
        self._backoff = Backoff()
        self._token: StoredToken | None = None
        self._structure: tuple[Structure, StateIndex, str] | None = None

    def __repr__(self) -> str:
        return f"<MiniserverConnection {self.name!r} {self._address}>"

    @property
    def _address(self) -> str:
        port = self.config.tls_port if self._ssl_context else self.config.port
        return f"{self.config.host}:{port}"

    async def run(self) -> None:
        """Connect, stream, reconnect: until cancelled. Never raises for a Miniserver fault."""
        async with self._send_channel:
            while True:
                streamed_since: list[float] = []
                try:
                    await self._run_session(streamed_since)
                except SessionEnded as ended:
                    await self._session_ended(ended, streamed_since)

    async def _session_ended(self, ended: SessionEnded, streamed_since: list[float]) -> None:
        now = trio.current_time()
        if streamed_since:
            self._backoff.session_ended(now - streamed_since[0])
        if ended.retry_after is not None:
            delay = ended.retry_after
        else:
            delay = self._backoff.next_delay(self._random.random())
        await self._report(
            SessionLost(
                self.name,
                ended.reason,
                ended.detail,
                auth_failure=ended.auth_failure,
                protocol_error=ended.protocol_error,
            )
        )
        level = logging.INFO if ended.reason is ReconnectReason.BOOTING else logging.WARNING
        log.log(
            level,
            "miniserver %s (%s): %s; next try in %.1f s",
            self.name,
            self._address,
            ended.detail,
            delay,
        )
        await self._report(
            StatusChanged(self.name, ConnectionState.WAITING, ended.detail, retry_in_seconds=delay)
        )
        await trio.sleep(delay)

    async def _report(self, message: Message) -> None:
        await self._send_channel.send(message)

    # --- one session ---------------------------------------------------------------------------

    async def _run_session(self, streamed_since: list[float]) -> None:
        await self._report(StatusChanged(self.name, ConnectionState.CONNECTING))
        public_key = await self._probe()
        session = self._new_session(public_key)
        try:
            await self._converse(session, streamed_since)
        finally:
            session.close()

    async def _probe(self) -> str:
        """apiKey (identifies the Miniserver; 503 = booting) and the public key."""
        api_key = await self._http_value("/jdev/cfg/apiKey")
        try:
            info = parse_api_key_value(api_key)
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unreadable jdev/cfg/apiKey answer: {exc}",
                protocol_error=True,
            ) from None
        await self._report(MiniserverIdentified(self.name, info.serial, info.version))
        public_key = await self._http_value("/jdev/sys/getPublicKey")
        if not isinstance(public_key, str):
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                "jdev/sys/getPublicKey answered no key",
                protocol_error=True,
            )
        return public_key

    async def _http_value(self, path: str) -> object:
        try:
            response = await self._get(path)
        except UnavailableError as exc:
            raise SessionEnded(ReconnectReason.UNREACHABLE, str(exc)) from None
        if response.status == ResponseCode.SERVICE_UNAVAILABLE:
            raise SessionEnded(
                ReconnectReason.BOOTING,
                f"booting (GET {path} answered 503)",
                retry_after=self._timeouts.booting_retry,
            )
        if response.status != ResponseCode.OK:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE, f"GET {path} answered HTTP {response.status}"
            )
        try:
            reply = parse_ll_reply(response.body)
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unreadable answer to GET {path}: {exc}",
                protocol_error=True,
            ) from None
        if reply.code != ResponseCode.OK:
            raise SessionEnded(
                ReconnectReason.REFUSED, f"GET {path} answered Loxone code {reply.code}"
            )
        return reply.value

    async def _get(self, path: str) -> HttpResponse:
        port = self.config.tls_port if self._ssl_context else self.config.port
        return await http_get(
            self.config.host,
            port,
            path,
            timeout_seconds=self._timeouts.connect,
            opener=self._opener,
        )

    async def _open_stream(self) -> trio.abc.Stream:
        port = self.config.tls_port if self._ssl_context else self.config.port
        return await open_stream(
            self.config.host,
            port,
            ssl_context=self._ssl_context,
            server_hostname=self.config.tls_server_name or None,
        )

    def _new_session(self, public_key: str) -> ClientSession:
        token = self._token
        # A token that expires within the next minute is not worth trying.
        if token is not None and token.valid_until_unix < time.time() + 60:
            token = None
        cached = self._structure[2] if self._structure else None
        try:
            return ClientSession(
                self.config.username,
                self.config.password,
                client_uuid=self._client_uuid,
                public_key_text=public_key,
                session_key=SessionKey(self._random_bytes(32), self._random_bytes(16)),
                salt=self._random_bytes(16).hex(),
                stored_token=token,
                cached_last_modified=cached,
            )
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unusable public key from jdev/sys/getPublicKey: {exc}",
                protocol_error=True,
            ) from None

    async def _converse(self, session: ClientSession, streamed_since: list[float]) -> None:
        try:
            with trio.fail_after(self._timeouts.connect):
                stream = await self._opener()
        except trio.TooSlowError:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"no connection to {self._address} within {self._timeouts.connect:g} s",
            ) from None
        except UnavailableError as exc:
            raise SessionEnded(ReconnectReason.UNREACHABLE, str(exc)) from None
        # Caught inside the nursery and raised outside it: trio would wrap it in a group.
        ended: SessionEnded | None = None
        async with stream, trio.open_nursery() as nursery:
            try:
                ws = await self._upgrade(nursery, stream)
                try:
                    await self._stream(ws, session, streamed_since)
                finally:
                    # Say goodbye with a close frame, but do not wait long for the answer: on
                    # a stop the reader task is cancelled too, and the whole exporter must be
                    # down within a second.
                    with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_WAIT_SECONDS):
                        await ws.aclose()
            except SessionEnded as exc:
                ended = exc
            finally:
                nursery.cancel_scope.cancel()
        if ended is not None:
            raise ended

    async def _upgrade(
        self, nursery: trio.Nursery, stream: trio.abc.Stream
    ) -> trio_websocket.WebSocketConnection:
        try:
            with trio.fail_after(self._timeouts.connect):
                return await trio_websocket.wrap_client_stream(
                    nursery,
                    stream,  # type: ignore[arg-type]  # any trio stream works
                    self.config.host,
                    WEBSOCKET_PATH,
                    subprotocols=[SUBPROTOCOL],
                    max_message_size=MAX_MESSAGE_SIZE,
                    message_queue_size=256,
                    receive_buffer_size=65536,
                )
        except trio.TooSlowError:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"WebSocket upgrade not answered within {self._timeouts.connect:g} s",
            ) from None
        except trio_websocket.ConnectionRejected as exc:
            if exc.status_code == ResponseCode.SERVICE_UNAVAILABLE:
                raise SessionEnded(
                    ReconnectReason.BOOTING,
                    "booting (WebSocket upgrade answered 503)",
                    retry_after=self._timeouts.booting_retry,
                ) from None
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"WebSocket upgrade refused with HTTP {exc.status_code}",
            ) from None
        except (trio_websocket.HandshakeError, trio.BrokenResourceError, OSError) as exc:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"WebSocket upgrade failed: {exc or type(exc).__name__}",
            ) from None

    async def _stream(
        self,
        ws: trio_websocket.WebSocketConnection,
        session: ClientSession,
        streamed_since: list[float],
    ) -> None:
        timeouts = self._timeouts
        for command in session.start():
            await ws.send_message(command)
        last_received = trio.current_time()
        next_keepalive = last_received + timeouts.keepalive_interval
        keepalive_sent_at: float | None = None
        while True:
            if keepalive_sent_at is None:
                deadline = min(last_received + timeouts.silence, next_keepalive)
            else:
                deadline = min(
                    last_received + timeouts.silence, keepalive_sent_at + timeouts.keepalive_answer
                )
            message: str | bytes | None = None
            with trio.move_on_at(deadline):
                try:
                    message = await ws.get_message()
                except trio_websocket.ConnectionClosed as exc:
                    raise _closed(exc.reason) from None
            now = trio.current_time()
            if message is None:
                if now >= last_received + timeouts.silence:
                    raise SessionEnded(
                        ReconnectReason.IDLE_TIMEOUT,
                        f"nothing received for {timeouts.silence:g} s",
                    )
                if keepalive_sent_at is not None:
                    raise SessionEnded(
                        ReconnectReason.KEEPALIVE_TIMEOUT,
                        f"no answer to keepalive within {timeouts.keepalive_answer:g} s",
                    )
                await ws.send_message(session.keepalive_command())
                keepalive_sent_at = now
                continue
            last_received = now
            for event in session.receive(message):
                if isinstance(event, KeepaliveReceived):
                    keepalive_sent_at = None
                    next_keepalive = now + timeouts.keepalive_interval
                elif isinstance(event, SendCommand):
                    await ws.send_message(event.text)
                else:
                    await self._on_event(event, streamed_since)

    async def _on_event(self, event: SessionEvent, streamed_since: list[float]) -> None:
        if isinstance(event, _TABLE_EVENTS):
            await self._report(TablesReceived(self.name, event))
        elif isinstance(event, Authenticated):
            log.debug(
                "miniserver %s: authenticated (via stored token: %s)", self.name, event.via_token
            )
            await self._report(StatusChanged(self.name, ConnectionState.LOADING))
            if event.via_token and self._token is not None:
                await self._report(TokenUpdated(self.name, self._token.valid_until_unix))
        elif isinstance(event, TokenAcquired):
            self._token = event.stored()
            await self._report(TokenUpdated(self.name, event.valid_until_unix))
        elif isinstance(event, TokenRejected):
            log.info(
                "miniserver %s: stored token refused (code %s); logging in again",
                self.name,
                event.code,
            )
            self._token = None
        elif isinstance(event, StructureLoaded):
            await self._load_structure(event)
        elif isinstance(event, StructureUnchanged):
            if self._structure is not None:
                structure, index, last_modified = self._structure
                await self._report(StructureReady(self.name, structure, index, last_modified))
        elif isinstance(event, UpdatesEnabled):
            streamed_since.append(trio.current_time())
            log.info("miniserver %s (%s): streaming", self.name, self._address)
            await self._report(StatusChanged(self.name, ConnectionState.STREAMING))
        elif isinstance(event, OutOfService):
            raise SessionEnded(ReconnectReason.OUT_OF_SERVICE, "out of service (rebooting)")
        elif isinstance(event, SessionFailed):
            raise _failed(event)
        elif isinstance(event, UnexpectedReply):
            log.debug("miniserver %s: ignored an unexpected reply", self.name)

    async def _load_structure(self, event: StructureLoaded) -> None:
        try:
            structure, index = await trio.to_thread.run_sync(parse_structure, event.text)
        except StructureError as exc:
            raise SessionEnded(
                ReconnectReason.STRUCTURE_ERROR, f"unreadable LoxAPP3.json: {exc}"
            ) from None
        self._structure = (structure, index, event.last_modified)
        log.info(
            "miniserver %s: structure of %s loaded (%d states)",
            self.name,
            event.last_modified,
            len(index),
        )
        await self._report(StructureReady(self.name, structure, index, event.last_modified))


def _closed(reason: trio_websocket.CloseReason | None) -> SessionEnded:
    if reason is None or reason.code == ABNORMAL_CLOSURE:
        return SessionEnded(ReconnectReason.CONNECTION_LOST, "connection lost (no close frame)")
    try:
        name = f" ({CloseCode(reason.code).name.lower().replace('_', ' ')})"
    except ValueError:
        name = ""
    text = f": {reason.reason}" if reason.reason else ""
    detail = f"closed by the Miniserver with code {reason.code}{name}{text}"
    return SessionEnded(ReconnectReason.CLOSED, detail)


def _failed(event: SessionFailed) -> SessionEnded:
    if event.auth_failure:
        return SessionEnded(
            ReconnectReason.AUTH_FAILED,
            f"authentication failed (code {event.code}): check username and password",
            auth_failure=True,
        )
    if event.code is not None:
        return SessionEnded(ReconnectReason.REFUSED, f"{event.reason} (code {event.code})")
    return SessionEnded(
        ReconnectReason.PROTOCOL_ERROR, f"protocol error: {event.reason}", protocol_error=True
    )
