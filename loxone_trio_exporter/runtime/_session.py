"""One WebSocket session with a Miniserver: upgrade, feed the ``ClientSession``, keep it alive;
and ``TokenKeeper``, the one holder of the Miniserver's token across sessions.

Ends by raising ``SessionEnded`` (the Miniserver closed, fell silent, refused, broke the
protocol) or by returning after a requested stop (with a ``killtoken`` first when configured).

Timers, all on trio's clock: a ``keepalive`` every 30 s and its answer within 15 s; nothing at all
received for 60 s ends the session; a command the session waits on gets a usable answer within
30 s (a Miniserver that answers keepalives but not the login would hold the session forever); the
token is refreshed at half its remaining life.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import trio

from ..backoff import DEFAULT_CAP_SECONDS
from ..errors import StructureError
from ..logs import SESSION_LOGGER
from ..protocol import (
    Authenticated,
    ClientSession,
    ClientState,
    DaytimerStatesReceived,
    KeepaliveReceived,
    OutOfService,
    PackedRecords,
    SendCommand,
    SessionEvent,
    SessionFailed,
    StoredToken,
    StructureLoaded,
    StructureUnchanged,
    TextStatesReceived,
    TokenAcquired,
    TokenKilled,
    TokenOperation,
    TokenRejected,
    UnexpectedReply,
    UpdatesEnabled,
    ValueStatesReceived,
    WeatherStatesReceived,
    token_refresh_delay,
)
from ..state import TableEvent
from ..structure import StructureLayout, layout_structure
from ._backpressure import TableBudget
from ._endings import SessionEnded, failed
from ._messages import (
    ConnectionState,
    Message,
    ReconnectReason,
    StatusChanged,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)
from ._token_store import TokenStore
from ._transport import MiniserverWebSocket, open_websocket

log = logging.getLogger(SESSION_LOGGER)

#: Larger structure files are parsed in a worker thread (about 50 ms of work per 256 KiB), so
#: the event loop (and /metrics) never stalls on them; smaller ones cost less than the thread.
PARSE_IN_THREAD_ABOVE = 256 * 1024
KILL_WAIT_SECONDS = 0.5
#: While a structure file downloads, how often the log says how far it got.
PROGRESS_INTERVAL_SECONDS = 5.0
#: The command that asks for the structure file (sent in clear, protocol doc §4.4).
STRUCTURE_COMMAND = "data/LoxAPP3.json"
_TABLE_EVENTS = (
    ValueStatesReceived,
    TextStatesReceived,
    DaytimerStatesReceived,
    WeatherStatesReceived,
)


@attrs.frozen
class CachedStructure:
    """The last structure a session loaded, kept across reconnects: an unchanged
    ``lastModified`` needs no download."""

    layout: StructureLayout
    last_modified: str


@attrs.frozen
class Timeouts:
    """Seconds; the defaults are issue 4's. Tests shrink them or run on virtual time."""

    connect: float = 10.0  # TCP + TLS + WebSocket upgrade, and each HTTP call
    keepalive_interval: float = 30.0
    keepalive_answer: float = 15.0
    silence: float = 60.0  # nothing at all received: the peer is gone
    reply: float = 30.0  # a command the session waits on (login, structure, refresh) is answered
    booting_retry: float = 5.0  # apiKey answered 503: ask again after this long
    reconnect_base: float = 1.0  # the backoff: first delay 1-2 s, doubling up to the cap
    reconnect_cap: float = DEFAULT_CAP_SECONDS
    # A refused password: the first wait 30-60 s, doubling up to 10 minutes (one login per
    # step), so that retrying never earns a block (close 4003).
    auth_retry_base: float = 30.0


def parse_structure(text: str) -> StructureLayout:
    """Parse a structure file and lay it out (run in a worker thread: large files take a while)."""
    return layout_structure(text)


#: A token that expires within this many seconds is not worth trying: log in with the password.
MIN_REMAINING_SECONDS = 60.0
#: The shortest wait between two refreshes: a Miniserver that answers every refreshjwt with a
#: validUntil in the past would otherwise be asked again at once, in a loop without end.
MIN_REFRESH_INTERVAL_SECONDS = 30.0


class TokenKeeper:
    """The one holder of a Miniserver's token: what the next login uses, kept on disk,
    refreshed. Lives as long as the connection task (across its reconnects), so a reconnect
    authenticates with ``authwithtoken``; the ``TokenStore`` carries it across restarts."""

    def __init__(
        self,
        miniserver: str,
        user: str,
        *,
        client_uuid: str,
        store: TokenStore | None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._miniserver = miniserver
        self._user = user
        self._client_uuid = client_uuid
        self._store = store
        self._wall_clock = wall_clock
        self._token: StoredToken | None = None
        self._loaded = store is None

    def __repr__(self) -> str:
        held = "a token" if self._token else "no token"
        return f"<TokenKeeper {self._miniserver!r} holding {held}>"

    def for_login(self) -> StoredToken | None:
        """The token to authenticate the next socket with, if there is a usable one."""
        if not self._loaded and self._store is not None:
            self._loaded = True
            self._token = self._store.load(
                self._miniserver, self._user, client_uuid=self._client_uuid
            )
        token = self._token
        if token is None or token.valid_until_unix < self._wall_clock() + MIN_REMAINING_SECONDS:
            return None
        return token

    @property
    def held(self) -> StoredToken | None:
        """The token this connection has now (to refresh or kill it), usable or not."""
        return self._token

    @property
    def valid_until_unix(self) -> float | None:
        return None if self._token is None else float(self._token.valid_until_unix)

    def acquired(self, token: StoredToken) -> None:
        """A new token from getjwt or refreshjwt: use it from now on, and store it."""
        self._keep(token)

    def confirmed(self, valid_until: int) -> None:
        """authwithtoken succeeded and says how long the token stays valid."""
        if self._token is not None and self._token.valid_until != valid_until:
            self._keep(attrs.evolve(self._token, valid_until=valid_until))

    def forget(self) -> None:
        """The token was refused, killed or belongs to a changed user: never use it again."""
        self._token = None
        self._loaded = True
        if self._store is not None:
            self._store.forget(self._miniserver, self._user)

    def refresh_delay(self) -> float | None:
        """Seconds until the token should be refreshed (half its remaining life, at most a day)."""
        if self._token is None:
            return None
        return token_refresh_delay(
            self._token.valid_until_unix,
            self._wall_clock(),
            min_delay_seconds=MIN_REFRESH_INTERVAL_SECONDS,
        )

    def _keep(self, token: StoredToken) -> None:
        self._token = token
        self._loaded = True
        if self._store is not None:
            self._store.save(self._miniserver, self._user, token)


class SessionDriver:
    """Drives one ``ClientSession`` over one WebSocket until it ends or is stopped."""

    def __init__(
        self,
        name: str,
        session: ClientSession,
        *,
        report: Callable[[Message], Awaitable[None]],
        report_nowait: Callable[[Message], bool] | None = None,
        tokens: TokenKeeper,
        structure: CachedStructure | None,
        timeouts: Timeouts,
        kill_token_on_stop: bool,
        table_budget: TableBudget | None = None,
    ) -> None:
        self.name = name
        self.session = session
        self.structure = structure  # updated when a new one is loaded
        self.streaming_since: float | None = None
        self._report = report
        #: Sends a message if the owner's queue has room at once; ``False`` when it has not.
        self._report_nowait = report_nowait or _never
        self._tokens = tokens
        self._timeouts = timeouts
        self._kill_token_on_stop = kill_token_on_stop
        self._table_budget = table_budget or TableBudget()
        self._stopping = False
        self._wait_scope: trio.CancelScope | None = None
        self._refresh_at = math.inf
        self._progress_at = math.inf  # the next "structure so far" line, while it downloads
        self._handlers = self._dispatch_table()

    def stop(self, *, kill_token: bool = True) -> None:
        """End the session soon (from another task): wakes the wait for the next message.
        ``kill_token=False`` keeps the token even with ``kill_token_on_stop`` (a restart)."""
        self._stopping = True
        if not kill_token:
            self._kill_token_on_stop = False
        if self._wait_scope is not None:
            self._wait_scope.cancel()

    async def run(self, stream: trio.abc.Stream, host: str) -> None:
        """Upgrade ``stream`` to a WebSocket and converse until the end; the caller closes it."""
        async with open_websocket(
            stream,
            host,
            upgrade_seconds=self._timeouts.connect,
            update_retry=self._timeouts.booting_retry,
            booting_retry=self._timeouts.booting_retry,
        ) as ws:
            await self._converse(ws)

    async def _converse(self, ws: MiniserverWebSocket) -> None:
        timers = _Timers(self._timeouts, trio.current_time())
        for command in self.session.start():
            await self._request(ws, command, timers)
        while not self._stopping:
            message = await self._stream(ws, timers)
            now = trio.current_time()
            if message is not None:  # taken just as the wait ended: handled all the same
                timers.received(now)
                await self._receive(ws, message, timers, now)
            if not self._stopping:  # a deadline came
                await self._on_deadline(ws, timers, now)
        await self._goodbye(ws)

    async def _stream(self, ws: MiniserverWebSocket, timers: _Timers) -> str | bytes | None:
        """Handle messages until a deadline passes or a stop is asked.

        One cancel scope for the whole stream, its deadline moved only when it changes (idle
        CPU, design section 4: a deadline set costs a heap entry; the silence deadline is
        re-armed only when it comes, see ``_Timers``). Only the wait is cancellable: ``stop``
        cancels only the wait, and a message whose handling has to wait (a command to send, the
        owner's queue full, a structure to parse) is handled with the deadline off, so that no
        deadline cuts it; the usual messages (a header, a table the owner's queue takes at once,
        a keepalive answer) are handled without any wait, so the deadline can stay. A message
        taken just as the scope was cancelled is returned, to be handled outside it.
        """
        with trio.CancelScope() as scope:
            while True:
                deadline = min(
                    timers.deadline(self.session.awaiting_reply),
                    self._refresh_at,
                    self._progress_at,
                )
                if deadline != scope.deadline:
                    scope.deadline = deadline
                self._wait_scope = scope
                message = await ws.receive()
                self._wait_scope = None
                if scope.cancel_called:
                    return message
                now = trio.current_time()
                timers.received(now)
                rest = self._receive_at_once(message, timers, now)
                if rest:
                    scope.deadline = math.inf
                    await self._handle(ws, rest, timers, now)
                    if self._stopping:
                        return None
        self._wait_scope = None
        return None

    async def _on_deadline(self, ws: MiniserverWebSocket, timers: _Timers, now: float) -> None:
        # raises when the Miniserver fell silent or left a command unanswered
        timers.check(now, awaiting_reply=self.session.awaiting_reply)
        if now >= self._progress_at:
            self._tell_progress(ws, now)
        if now >= self._refresh_at:
            await self._start_refresh(ws, timers)
        elif timers.keepalive_due(now):
            await ws.send(self.session.keepalive_command())
            timers.keepalive_sent(now)

    async def _receive(
        self,
        ws: MiniserverWebSocket,
        message: str | bytes,
        timers: _Timers,
        now: float,
    ) -> None:
        await self._handle(ws, self._receive_at_once(message, timers, now), timers, now)

    def _receive_at_once(
        self, message: str | bytes, timers: _Timers, now: float
    ) -> list[SessionEvent]:
        """Feed ``message`` to the session and handle the leading events that need no wait (a
        keepalive answer; a table that fits the table budget and the owner's queue); the rest,
        for ``_handle``."""
        events = self.session.receive(message)
        for index, event in enumerate(events):
            if isinstance(event, KeepaliveReceived):
                timers.keepalive_answered(now)
            elif not (isinstance(event, _TABLE_EVENTS) and self._table_at_once(event)):
                return events[index:]
        return []

    async def _handle(
        self,
        ws: MiniserverWebSocket,
        events: list[SessionEvent],
        timers: _Timers,
        now: float,
    ) -> None:
        for event in events:
            if isinstance(event, KeepaliveReceived):
                timers.keepalive_answered(now)
            elif isinstance(event, SendCommand):
                await self._request(ws, event.text, timers)
            else:
                await self._on_event(event)

    async def _request(self, ws: MiniserverWebSocket, text: str, timers: _Timers) -> None:
        """Send a command of the session's: its answer is due within ``Timeouts.reply``."""
        now = trio.current_time()
        timers.requested(now)
        if text == STRUCTURE_COMMAND:  # a large file may take a while: say how far it got
            self._progress_at = now + PROGRESS_INTERVAL_SECONDS
        await ws.send(text)

    def _tell_progress(self, ws: MiniserverWebSocket, now: float) -> None:
        if self.session.state is not ClientState.LOADING_STRUCTURE:
            self._progress_at = math.inf
            return
        self._progress_at = now + PROGRESS_INTERVAL_SECONDS
        log.info(
            "miniserver %s: downloading the structure file: %.1f MB so far",
            self.name,
            ws.bytes_arriving / 1e6,
            extra={"miniserver": self.name, "event": "structure_progress"},
        )

    async def _start_refresh(self, ws: MiniserverWebSocket, timers: _Timers) -> None:
        self._refresh_at = math.inf  # until the outcome arrives
        if self.session.token_operation is not TokenOperation.NONE:
            return
        token = self._tokens.held
        if token is None:
            return
        log.debug("miniserver %s: refreshing the token", self.name)
        for command in self.session.request_token_refresh(token):
            await self._request(ws, command, timers)

    async def _goodbye(self, ws: MiniserverWebSocket) -> None:
        """A requested stop: kill the token first when configured (``kill_token_on_exit``)."""
        token = self._tokens.held
        can_kill = (
            self._kill_token_on_stop
            and self.session.state is ClientState.STREAMING
            and self.session.token_operation is TokenOperation.NONE
            and token is not None
        )
        if not can_kill or token is None:
            return
        with trio.move_on_after(KILL_WAIT_SECONDS), contextlib.suppress(SessionEnded):
            for command in self.session.kill_token_commands(token):
                await ws.send(command)
            while self.session.state is ClientState.STREAMING:
                for event in self.session.receive(await ws.receive()):
                    if isinstance(event, SendCommand):
                        await ws.send(event.text)
                    elif isinstance(event, TokenKilled):
                        log.info("miniserver %s: token killed (code %s)", self.name, event.code)
        self._tokens.forget()

    async def _on_event(self, event: SessionEvent) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            await handler(event)

    def _dispatch_table(self) -> dict[type, Callable[[Any], Awaitable[None]]]:
        """What each session event does: one handler per event type."""
        table: dict[type, Callable[[Any], Awaitable[None]]] = {
            kind: self._on_table for kind in _TABLE_EVENTS
        }
        table.update(
            {
                Authenticated: self._on_authenticated,
                TokenAcquired: self._on_token_acquired,
                TokenRejected: self._on_token_rejected,
                TokenKilled: self._on_token_killed,
                StructureLoaded: self._load_structure,
                StructureUnchanged: self._on_structure_unchanged,
                UpdatesEnabled: self._on_updates_enabled,
                OutOfService: self._on_out_of_service,
                SessionFailed: self._on_failed,
                UnexpectedReply: self._on_unexpected_reply,
            }
        )
        return table

    async def _on_table(self, event: TableEvent) -> None:
        size = _payload_size(event.states)
        if size:
            await self._table_budget.acquire(size)  # waits only for a flood of big tables
        await self._report(TablesReceived(self.name, event, size, self._table_budget))

    def _table_at_once(self, event: TableEvent) -> bool:
        """Report a table without waiting, if its bytes fit the budget and the owner's queue
        has room; ``False`` (nothing reported, nothing counted) when ``_on_table`` must wait."""
        size = _payload_size(event.states)
        if not self._table_budget.try_acquire(size):
            return False
        if self._report_nowait(TablesReceived(self.name, event, size, self._table_budget)):
            return True
        self._table_budget.release(size)
        return False

    async def _on_authenticated(self, event: Authenticated) -> None:
        log.debug("miniserver %s: authenticated (stored token: %s)", self.name, event.via_token)
        if event.via_token and event.token is not None:
            self._tokens.confirmed(event.token.valid_until)
        await self._report(StatusChanged(self.name, ConnectionState.LOADING))
        await self._token_updated()

    async def _on_token_acquired(self, event: TokenAcquired) -> None:
        self._tokens.acquired(event.token)
        await self._token_updated()

    async def _on_token_rejected(self, event: TokenRejected) -> None:
        log.info(
            "miniserver %s: token refused (code %s); it is dropped and a new one acquired",
            self.name,
            event.code,
        )
        self._tokens.forget()

    async def _on_token_killed(self, _event: TokenKilled) -> None:
        self._tokens.forget()

    async def _on_structure_unchanged(self, _event: StructureUnchanged) -> None:
        if self.structure is not None:
            await self._report(
                StructureReady(self.name, self.structure.layout, self.structure.last_modified)
            )

    async def _on_updates_enabled(self, _event: UpdatesEnabled) -> None:
        self.streaming_since = trio.current_time()
        self._schedule_refresh()
        await self._report(StatusChanged(self.name, ConnectionState.STREAMING))

    async def _on_out_of_service(self, _event: OutOfService) -> None:
        raise SessionEnded(
            ReconnectReason.OUT_OF_SERVICE, "out of service (rebooting)", level=logging.INFO
        )

    async def _on_failed(self, event: SessionFailed) -> None:
        raise failed(event)

    async def _on_unexpected_reply(self, _event: UnexpectedReply) -> None:
        log.debug("miniserver %s: ignored an unexpected reply", self.name)

    async def _token_updated(self) -> None:
        valid_until = self._tokens.valid_until_unix
        if valid_until is not None:
            await self._report(TokenUpdated(self.name, valid_until))
        if self.streaming_since is not None:
            self._schedule_refresh()

    def _schedule_refresh(self) -> None:
        delay = self._tokens.refresh_delay()
        self._refresh_at = math.inf if delay is None else trio.current_time() + delay

    async def _load_structure(self, event: StructureLoaded) -> None:
        try:
            if len(event.text) > PARSE_IN_THREAD_ABOVE:
                layout = await trio.to_thread.run_sync(parse_structure, event.text)
            else:
                layout = parse_structure(event.text)
        except StructureError as exc:
            raise SessionEnded(
                ReconnectReason.STRUCTURE_ERROR, f"unreadable LoxAPP3.json: {exc}"
            ) from None
        self._progress_at = math.inf
        previous, self.structure = self.structure, CachedStructure(layout, event.last_modified)
        changes = "" if previous is None else f"; {describe_changes(previous.layout, layout)}"
        log.info(
            "miniserver %s: structure of %s loaded (%d controls, %d states)%s",
            self.name,
            event.last_modified,
            len(layout.controls),
            len(layout.known_uuids()),
            changes,
            extra={"miniserver": self.name, "event": "structure_loaded"},
        )
        await self._report(StructureReady(self.name, layout, event.last_modified))


def describe_changes(old: StructureLayout, new: StructureLayout) -> str:
    """What a changed structure file changed, for the log: controls by their UUID."""
    before = {control.uuid_action: control.name for control in old.controls}
    after = {control.uuid_action: control.name for control in new.controls}
    added = after.keys() - before.keys()
    removed = before.keys() - after.keys()
    renamed = [uuid for uuid in after.keys() & before.keys() if after[uuid] != before[uuid]]
    parts = [f"{len(added)} controls added", f"{len(removed)} removed", f"{len(renamed)} renamed"]
    examples = [f"{before[u]!r} -> {after[u]!r}" for u in sorted(renamed)[:3]]
    return ", ".join(parts) + (f" ({', '.join(examples)})" if examples else "")


def _never(_message: Message) -> bool:
    return False


def _payload_size(states: object) -> int:
    return states.payload_size if isinstance(states, PackedRecords) else 0


class _Timers:
    """The keepalive and silence deadlines of one socket (trio's clock).

    The silence deadline is not moved by every message (that would move the stream's deadline
    twice a table): ``deadline`` names the one armed last, and ``check``, called when a deadline
    comes, ends the session only if nothing was received since, and else arms the next one from
    the last message. A silent Miniserver is still found out ``silence`` seconds after its last
    message.
    """

    def __init__(self, timeouts: Timeouts, now: float) -> None:
        self._timeouts = timeouts
        self._last_received = now
        self._silence_at = now + timeouts.silence
        self._next_keepalive = now + timeouts.keepalive_interval
        self._keepalive_sent_at: float | None = None
        self._requested_at = now

    def deadline(self, awaiting_reply: bool) -> float:
        if self._keepalive_sent_at is None:
            keepalive = self._next_keepalive
        else:
            keepalive = self._keepalive_sent_at + self._timeouts.keepalive_answer
        deadline = min(self._silence_at, keepalive)
        if awaiting_reply:
            deadline = min(deadline, self._requested_at + self._timeouts.reply)
        return deadline

    def requested(self, now: float) -> None:
        """A command was sent whose answer the session waits for."""
        self._requested_at = now

    def received(self, now: float) -> None:
        self._last_received = now

    def keepalive_answered(self, now: float) -> None:
        self._keepalive_sent_at = None
        self._next_keepalive = now + self._timeouts.keepalive_interval

    def keepalive_sent(self, now: float) -> None:
        self._keepalive_sent_at = now

    def keepalive_due(self, now: float) -> bool:
        return self._keepalive_sent_at is None and now >= self._next_keepalive

    def check(self, now: float, *, awaiting_reply: bool) -> None:
        """Raise ``SessionEnded`` when the Miniserver has been silent for too long, or has
        kept the session waiting for the answer to a command."""
        timeouts = self._timeouts
        if awaiting_reply and now >= self._requested_at + timeouts.reply:
            raise SessionEnded(
                ReconnectReason.REPLY_TIMEOUT,
                f"no usable answer to the last command within {timeouts.reply:g} s",
            )
        if now >= self._last_received + timeouts.silence:
            raise SessionEnded(
                ReconnectReason.IDLE_TIMEOUT, f"nothing received for {timeouts.silence:g} s"
            )
        self._silence_at = self._last_received + timeouts.silence
        sent = self._keepalive_sent_at
        if sent is not None and now >= sent + timeouts.keepalive_answer:
            raise SessionEnded(
                ReconnectReason.KEEPALIVE_TIMEOUT,
                f"no answer to keepalive within {timeouts.keepalive_answer:g} s",
            )
