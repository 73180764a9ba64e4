"""One Miniserver connection: probe, connect, stream, and reconnect, until stopped.

The task probes the Miniserver over HTTP (``jdev/cfg/apiKey``: serial, firmware, ``httpsStatus``;
503 means it is booting), picks the login of that firmware (``protocol.login_era``) and plain or
TLS (``_transport``), fetches the public key where commands are encrypted, opens the stream
itself under one deadline and hands it to a ``SessionDriver`` (``_session``). When a session
ends it reports why, waits (``_endings`` says how long; ``retry_now`` ends the wait) and starts
again; an outage's log lines tell its story once (``_Outage``).

Secrets: the password lives in the ``ClientSession``, tokens in the ``TokenKeeper``; no log line,
message or exception text built here contains them (tests capture every log line to prove it).
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TypeVar

import attrs
import trio

from ..backoff import Backoff
from ..config import MiniserverConfig
from ..errors import RemoteProtocolError, UnavailableError
from ..logs import SESSION_LOGGER
from ..protocol import (
    ClientSession,
    LoginEra,
    ResponseCode,
    SessionKey,
    UnsupportedFirmware,
    login_era,
    parse_api_key_value,
    parse_ll_reply,
)
from ._backpressure import TableBudget
from ._endings import AUTH_FAILURE_CAP_SECONDS, SessionEnded, unsupported_firmware
from ._messages import (
    ConnectionState,
    Message,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
)
from ._session import CachedStructure, SessionDriver, Timeouts, TokenKeeper
from ._supervision import InternalErrorLog
from ._token_store import TokenStore
from ._transport import (
    HTTPS_CERTIFICATE_EXPIRED,
    HttpResponse,
    TlsError,
    Transport,
    client_ssl_context,
    commands_in_clear,
    http_get,
    open_stream,
    probe_transport,
    session_transport,
)

log = logging.getLogger(SESSION_LOGGER)

#: Opens a stream for a transport; tests replace TCP/TLS with in-memory streams.
Opener = Callable[[Transport], Awaitable[trio.abc.Stream]]

__all__ = ["MiniserverConnection", "Opener", "Timeouts"]

_T = TypeVar("_T")

#: From this long on, the log line of a wait says how to end it.
LONG_WAIT_SECONDS = 30.0
LONG_WAIT_HINT = " (POST /-/reconnect, a config reload or SIGHUP tries at once)"
#: Said when an HTTP answer is not what any Miniserver sends.
NOT_A_MINISERVER_HINT = "is this a Miniserver? check host and port"


class _Outage:
    """The stretch of one Miniserver without streaming: from the first session that ended to
    the next that streams. Tells the log when the same failure only repeats, and how long it
    all took once it is over."""

    def __init__(self) -> None:
        self._since: float | None = None
        self._first_reason = ""
        self._last_detail = ""
        self._tries = 0
        self._streamed = False

    def ended(self, now: float, ending: SessionEnded) -> bool:
        """A session ended (or never got going); whether it repeats the one before."""
        if self._since is None:
            self._since, self._first_reason = now, ending.reason.value
        repeated = self._tries > 0 and ending.detail == self._last_detail
        self._tries += 1
        self._last_detail = ending.detail
        return repeated

    def streaming(self, name: str, now: float) -> None:
        """A session streams: the outage, if any, is over."""
        since, self._since = self._since, None
        fields = {"miniserver": name}
        if since is None:
            if not self._streamed:
                log.info("miniserver %s: streaming", name, extra=fields | {"event": "streaming"})
        else:
            tries = "1 failed try" if self._tries == 1 else f"{self._tries} failed tries"
            log.info(
                "miniserver %s: streaming again after %.1f s (%s; %s)",
                name,
                now - since,
                self._first_reason,
                tries,
                extra=fields | {"event": "streaming_again", "reason": self._first_reason},
            )
        self._streamed = True
        self._tries, self._last_detail = 0, ""


@attrs.frozen
class _Announced:
    """What the HTTP probe learned for the login: how this firmware logs in, and the public
    key to encrypt commands with (``None``: commands go in clear, as with a hash login or over
    TLS from firmware 11.2)."""

    era: LoginEra
    public_key: str | None


class MiniserverConnection:
    """Keeps one Miniserver's session alive and reports everything to the state owner."""

    def __init__(
        self,
        config: MiniserverConfig,
        send_channel: trio.MemorySendChannel[Message],
        *,
        client_uuid: str,
        timeouts: Timeouts | None = None,
        token_store: TokenStore | None = None,
        random_source: random.Random | None = None,
        random_bytes: Callable[[int], bytes] = os.urandom,
        wall_clock: Callable[[], float] = time.time,
        opener: Opener | None = None,
    ) -> None:
        """``opener`` replaces the TCP/TLS connections (tests: in-memory streams on virtual
        time); ``random_bytes`` makes the session keys and salts; ``wall_clock`` tells token
        lifetimes (seconds since 1970)."""
        self.config = config
        self.name = config.name
        self._send_channel = send_channel
        self._client_uuid = client_uuid
        self._timeouts = timeouts or Timeouts()
        self._random = random_source or random.Random()  # noqa: S311 - jitter, not secrets
        self._random_bytes = random_bytes
        self._opener = opener or _open
        self._ssl_context: ssl.SSLContext | None = (
            None if config.tls == "off" else client_ssl_context(config)
        )
        self._backoff = Backoff(
            base=self._timeouts.reconnect_base, cap=self._timeouts.reconnect_cap
        )
        # Refused credentials wait longer, so retries never get the address blocked (4003).
        self._auth_backoff = Backoff(
            base=self._timeouts.auth_retry_base,
            cap=max(AUTH_FAILURE_CAP_SECONDS, self._timeouts.auth_retry_base),
        )
        self._tokens = TokenKeeper(
            config.name,
            config.username,
            client_uuid=client_uuid,
            store=token_store,
            wall_clock=wall_clock,
        )
        self._structure: CachedStructure | None = None
        self._outage = _Outage()
        self._driver: SessionDriver | None = None
        self._errors = InternalErrorLog(log, config.name)
        self._table_budget = TableBudget()  # across sessions: queued tables outlive theirs
        self._restart_detail: str | None = None  # set by ``restart_session``
        self._in_session = False  # inside ``SessionDriver.run``: there is a session to end
        self._stopping = False
        self._sleep_scope: trio.CancelScope | None = None
        self._warned_expired_certificate = False
        self._transport = probe_transport(config, self._ssl_context)

    def __repr__(self) -> str:
        return f"<MiniserverConnection {self.name!r} {self._transport.describe()}>"

    def stop(self) -> None:
        """Finish soon (from another task): a streaming session says goodbye (and kills its
        token when ``kill_token_on_exit``); a wait for the next try ends at once."""
        self._stopping = True
        if self._driver is not None:
            self._driver.stop()
        if self._sleep_scope is not None:
            self._sleep_scope.cancel()

    def retry_now(self) -> bool:
        """End the wait for the next try at once (from another task: ``POST /-/reconnect``, a
        reload, SIGHUP). ``False`` when this connection was not waiting."""
        if self._sleep_scope is None or self._stopping:
            return False
        log.info(
            "miniserver %s: trying again now, as asked",
            self.name,
            extra={"miniserver": self.name, "event": "retry_now"},
        )
        self._sleep_scope.cancel()
        return True

    def restart_session(self, detail: str) -> bool:
        """End the current session and start a new one after the usual backoff (from another
        task): the state owner lost this Miniserver's state to an internal error and needs the
        structure and every value again. The end is counted as ``internal_error``; the token
        is kept. ``False`` when no session was running (the next one starts afresh anyway)."""
        self._structure = None  # the owner needs it again, and it may be what failed
        if self._restart_detail is not None:
            return True  # asked already; the session is ending
        if self._driver is None or not self._in_session or self._stopping:
            return False
        self._restart_detail = detail
        self._driver.stop(kill_token=False)
        return True

    async def run(self) -> None:
        """Connect, stream, reconnect: until stopped or cancelled. Never raises but for
        cancellation: this is the failure boundary of one Miniserver (``_supervision``)."""
        async with self._send_channel:
            while not self._stopping:
                try:
                    await self._run_session()
                except SessionEnded as ended:
                    if not self._stopping:
                        await self._contained(self._wait_after, ended)
                except Exception as exc:  # the boundary: any defect of ours
                    contained = self._internal_error(exc, "the session")
                    if not self._stopping:
                        await self._contained(self._wait_after, contained)
            try:
                await self._report(StatusChanged(self.name, ConnectionState.STOPPED))
            except Exception as exc:  # the boundary, as above
                self._errors.report(exc, "the stop", "stopping anyway")

    def _internal_error(self, exc: Exception, where: str) -> SessionEnded:
        # A defect may come from the cached structure (a reconnect would meet it again): the
        # next session loads the structure anew.
        self._structure = None
        detail = self._errors.report(exc, where, "the session restarts")
        return SessionEnded(ReconnectReason.INTERNAL_ERROR, detail, level=logging.INFO)

    async def _contained(self, step: Callable[[_T], Awaitable[None]], argument: _T) -> None:
        """Run a step between sessions; a defect in it must not end the task either."""
        try:
            await step(argument)
        except Exception as exc:  # the boundary, as in ``run``
            self._errors.report(exc, "the reconnect wait", "waiting before the next try")
            delay = self._backoff.next_delay(self._random.random())
            with trio.move_on_after(delay) as self._sleep_scope:
                await trio.sleep_forever()
            self._sleep_scope = None

    async def _wait_after(self, ended: SessionEnded) -> None:
        now = trio.current_time()
        driver = self._driver
        if driver is not None and driver.streaming_since is not None:
            self._backoff.session_ended(trio.current_time() - driver.streaming_since)
            self._auth_backoff.reset()  # the credentials worked
        if ended.forget_token:
            self._tokens.forget()
        if ended.retry_after is not None:
            delay = ended.retry_after
        elif ended.auth_failure:
            delay = self._auth_backoff.next_delay(self._random.random())
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
        repeated = self._outage.ended(now, ended)
        log.log(
            # The same failure again and again is told once per outage; the line that ends the
            # outage counts the tries.
            logging.DEBUG if repeated else ended.level,
            "miniserver %s (%s): %s; next try in %.1f s%s",
            self.name,
            self._transport.describe(),
            ended.detail,
            delay,
            # A long wait can be cut short, and whoever fixed the cause wants to know how.
            LONG_WAIT_HINT if delay >= LONG_WAIT_SECONDS else "",
            extra={
                "miniserver": self.name,
                "event": "session_lost",
                "reason": ended.reason.value,
                "next_try_seconds": round(delay, 1),
            },
        )
        await self._report(
            StatusChanged(self.name, ConnectionState.WAITING, ended.detail, retry_in_seconds=delay)
        )
        with trio.move_on_after(delay) as self._sleep_scope:
            await trio.sleep_forever()
        self._sleep_scope = None

    async def _report(self, message: Message) -> None:
        # Without a yield when the owner's queue has room: the socket read that follows is the
        # checkpoint, and each value table costs one task switch less (idle CPU, design 4).
        if type(message) is StatusChanged and message.state is ConnectionState.STREAMING:
            self._outage.streaming(self.name, trio.current_time())
        if not self._report_nowait(message):
            await self._send_channel.send(message)  # the owner is behind: wait for it

    def _report_nowait(self, message: Message) -> bool:
        """Send ``message`` if the owner's queue has room now; ``False`` (not sent) if not."""
        try:
            self._send_channel.send_nowait(message)
        except trio.WouldBlock:
            return False
        return True

    # --- one session ---------------------------------------------------------------------------

    async def _run_session(self) -> None:
        self._driver = None
        self._restart_detail = None
        await self._report(StatusChanged(self.name, ConnectionState.CONNECTING))
        announced = await self._probe()
        session = self._new_session(announced)
        driver = SessionDriver(
            self.name,
            session,
            report=self._report,
            report_nowait=self._report_nowait,
            tokens=self._tokens,
            structure=self._structure,
            timeouts=self._timeouts,
            kill_token_on_stop=self.config.kill_token_on_exit,
            table_budget=self._table_budget,
        )
        try:
            stream = await self._connect(self._transport)
            self._driver = driver
            if self._stopping:
                driver.stop()
            async with stream:
                self._in_session = True
                await driver.run(stream, self.config.host)
        finally:
            self._in_session = False
            self._structure = driver.structure
            session.close()
        restart_detail = self._take_restart_detail()  # set by another task meanwhile
        if restart_detail is not None:
            self._structure = None
            raise SessionEnded(ReconnectReason.INTERNAL_ERROR, restart_detail, level=logging.INFO)
        if not self._stopping:  # the session returned without being asked to: it was closed
            raise SessionEnded(ReconnectReason.CLOSED, "session closed")

    def _take_restart_detail(self) -> str | None:
        detail, self._restart_detail = self._restart_detail, None
        return detail

    async def _probe(self) -> _Announced:
        """apiKey (who it is, booting or not, TLS or not, which firmware), then the public key
        when commands are to be encrypted."""
        probe = probe_transport(self.config, self._ssl_context)
        self._transport = probe
        api_key = await self._http_value(probe, "/jdev/cfg/apiKey")
        try:
            info = parse_api_key_value(api_key)
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unreadable jdev/cfg/apiKey answer: {exc}",
                protocol_error=True,
            ) from None
        # Old firmware may leave the version out of apiKey: jdev/cfg/version says it (§1.2).
        firmware = info.version or await self._firmware_version(probe)
        await self._report(MiniserverIdentified(self.name, info.serial, firmware))
        try:
            era = login_era(firmware)
        except UnsupportedFirmware as exc:
            raise unsupported_firmware(str(exc)) from None
        self._transport = session_transport(
            self.config, self._ssl_context, https_status=info.https_status, serial=info.serial
        )
        if (
            self.config.tls == "auto"
            and info.https_status == HTTPS_CERTIFICATE_EXPIRED
            and not self._warned_expired_certificate
        ):
            self._warned_expired_certificate = True
            log.warning(
                "miniserver %s: its TLS certificate has expired (httpsStatus 2); using plain "
                "ws:// with encrypted commands until it is renewed",
                self.name,
            )
        if not era.has_tokens or commands_in_clear(self._transport, firmware):
            return _Announced(era, public_key=None)
        public_key = await self._http_value(self._transport, "/jdev/sys/getPublicKey")
        if not isinstance(public_key, str):
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                "jdev/sys/getPublicKey answered no key",
                protocol_error=True,
            )
        return _Announced(era, public_key)

    async def _firmware_version(self, transport: Transport) -> str:
        version = await self._http_value(transport, "/jdev/cfg/version")
        if not isinstance(version, str):
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                "neither jdev/cfg/apiKey nor jdev/cfg/version says the firmware version",
                protocol_error=True,
            )
        return version

    async def _http_value(self, transport: Transport, path: str) -> object:
        response = await self._get(transport, path)
        if response.status == ResponseCode.SERVICE_UNAVAILABLE:
            raise SessionEnded(
                ReconnectReason.BOOTING,
                f"booting (GET {path} answered 503)",
                retry_after=self._timeouts.booting_retry,
                level=logging.INFO,
            )
        if response.status != ResponseCode.OK:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"GET {path} answered HTTP {response.status}: {NOT_A_MINISERVER_HINT}",
            )
        try:
            reply = parse_ll_reply(response.body)
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unreadable answer to GET {path}: {exc}; {NOT_A_MINISERVER_HINT}",
                protocol_error=True,
            ) from None
        if reply.code != ResponseCode.OK:
            raise SessionEnded(
                ReconnectReason.REFUSED, f"GET {path} answered Loxone code {reply.code}"
            )
        return reply.value

    async def _get(self, transport: Transport, path: str) -> HttpResponse:
        try:
            return await http_get(
                transport.host,
                transport.port,
                path,
                timeout_seconds=self._timeouts.connect,
                opener=partial(self._opener, transport),
            )
        except TlsError as exc:
            raise SessionEnded(ReconnectReason.TLS_ERROR, str(exc), level=logging.ERROR) from None
        except UnavailableError as exc:
            raise SessionEnded(ReconnectReason.UNREACHABLE, str(exc)) from None

    async def _connect(self, transport: Transport) -> trio.abc.Stream:
        try:
            with trio.fail_after(self._timeouts.connect):
                return await self._opener(transport)
        except trio.TooSlowError:
            raise SessionEnded(
                ReconnectReason.UNREACHABLE,
                f"no connection to {transport.describe()} within {self._timeouts.connect:g} s: "
                "is the Miniserver switched on and reachable from here (firewall, VLAN)?",
            ) from None
        except TlsError as exc:
            raise SessionEnded(ReconnectReason.TLS_ERROR, str(exc), level=logging.ERROR) from None
        except UnavailableError as exc:
            raise SessionEnded(ReconnectReason.UNREACHABLE, str(exc)) from None

    def _new_session(self, announced: _Announced) -> ClientSession:
        cached = self._structure.last_modified if self._structure else None
        in_clear = announced.public_key is None
        try:
            return ClientSession(
                self.config.username,
                self.config.password,
                client_uuid=self._client_uuid,
                public_key_text=announced.public_key,
                session_key=None
                if in_clear
                else SessionKey(self._random_bytes(32), self._random_bytes(16)),
                salt=None if in_clear else self._random_bytes(16).hex(),
                stored_token=self._tokens.for_login() if announced.era.has_tokens else None,
                cached_last_modified=cached,
                tls=in_clear,
                era=announced.era,
            )
        except RemoteProtocolError as exc:
            raise SessionEnded(
                ReconnectReason.PROTOCOL_ERROR,
                f"unusable public key from jdev/sys/getPublicKey: {exc}",
                protocol_error=True,
            ) from None


async def _open(transport: Transport) -> trio.abc.Stream:
    return await open_stream(
        transport.host,
        transport.port,
        ssl_context=transport.ssl_context,
        server_hostname=transport.server_name,
    )
