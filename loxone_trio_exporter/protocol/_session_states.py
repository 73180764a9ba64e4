"""The client session's vocabulary: its lifecycle as tables, the requests it can have in
flight, and the events it reports. The engine that uses them is ``_session.ClientSession``.

The lifecycle is written as a table, the way h11's ``_state.py`` does it.

A ``ClientSession`` moves through::

    IDLE -> KEY_EXCHANGE -> AUTHENTICATING -> LOADING_STRUCTURE -> ENABLING_UPDATES -> STREAMING
                  (IDLE -> AUTHENTICATING directly over TLS)                              |
    every active state -> CLOSED (out of service, close(), token killed) | ERROR (sticky)  <-+

Every step, whether the caller asked for it (``Step.START``, ``Step.RECEIVE``, ...) or the
Miniserver's reply caused it (``Step.AUTHENTICATED``, ...), is looked up in ``TRANSITIONS``. A
step that is not there is illegal: asked for by the caller it is a ``LocalProtocolError`` and the
session goes to ``ERROR``; caused by the Miniserver it is a ``RemoteProtocolError``, which the
session reports as ``SessionFailed`` (and goes to ``ERROR`` as well). Nothing leaves ``ERROR``.

Token refresh and kill run *inside* STREAMING: tables keep flowing while they are under way. Each
is a two-step exchange (getkey2, then the command with the token hashed with that key), tracked by
the sub-state ``TokenOperation`` and its own table, so a second one cannot start while the first is
in flight (one request in flight at a time, protocol doc §2.2).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

import attrs

from ..errors import LocalProtocolError, RemoteProtocolError
from ._auth import HashAlgorithm, TokenInfo, loxone_time_to_unix
from ._events import (
    DaytimerStatesReceived,
    KeepaliveReceived,
    OutOfService,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
)
from ._replies import LLReply


class ClientState(enum.Enum):
    """Where a ``ClientSession`` is in its lifecycle (protocol doc §5.1)."""

    IDLE = "idle"  # constructed; start() not called yet
    KEY_EXCHANGE = "key exchange"  # jdev/sys/keyexchange sent
    AUTHENTICATING = "authenticating"  # getkey2 -> getjwt, or getkey2 -> authwithtoken
    LOADING_STRUCTURE = "loading structure"  # LoxAPPversion3, then data/LoxAPP3.json if changed
    ENABLING_UPDATES = "enabling updates"  # jdev/sps/enablebinstatusupdate sent
    STREAMING = "streaming"  # event tables flow; keepalive, token refresh and kill allowed
    CLOSED = "closed"  # ended normally: out of service, token killed, or close()
    ERROR = "error"  # failed; sticky


class TokenOperation(enum.Enum):
    """The token exchange under way inside STREAMING."""

    NONE = "none"
    REFRESHING = "refreshing"  # getkey2, then refreshjwt
    KILLING = "killing"  # getkey2, then killtoken


class Step(enum.Enum):
    """What can happen to a session: caller actions first, then what replies cause."""

    # Asked for by the caller.
    START = enum.auto()  # send keyexchange
    START_IN_CLEAR = enum.auto()  # TLS: no key exchange, getkey2 in clear
    RECEIVE = enum.auto()  # feed a WebSocket message
    SEND_KEEPALIVE = enum.auto()
    REQUEST_REFRESH = enum.auto()
    REQUEST_KILL = enum.auto()
    CLOSE = enum.auto()
    # Caused by what the Miniserver sent.
    KEY_EXCHANGED = enum.auto()
    KEY_RECEIVED = enum.auto()  # a getkey2 reply
    TOKEN_REJECTED = enum.auto()  # 401/477 to authwithtoken, or a refused refreshjwt
    AUTHENTICATED = enum.auto()  # getjwt or authwithtoken succeeded
    VERSION_CHANGED = enum.auto()  # LoxAPPversion3 differs from the cache
    STRUCTURE_LOADED = enum.auto()
    STRUCTURE_UNCHANGED = enum.auto()
    UPDATES_ENABLED = enum.auto()
    STATE_TABLE = enum.auto()  # a value/text/daytimer/weather table
    KEEPALIVE = enum.auto()  # the answer to keepalive
    UNEXPECTED_REPLY = enum.auto()  # a reply nobody in this session asked for
    TOKEN_REFRESHED = enum.auto()
    TOKEN_KILLED = enum.auto()
    OUT_OF_SERVICE = enum.auto()
    FAILED = enum.auto()  # refused, or a remote protocol error


_S = ClientState

# Allowed in every active state (KEY_EXCHANGE .. STREAMING), with where they lead.
_ACTIVE_STEPS: Mapping[Step, ClientState | None] = {
    Step.RECEIVE: None,  # None: stay in the same state
    Step.SEND_KEEPALIVE: None,  # the Miniserver answers keepalive at any time
    Step.KEEPALIVE: None,
    Step.UNEXPECTED_REPLY: None,  # logged by the caller, never fatal
    Step.OUT_OF_SERVICE: _S.CLOSED,
    Step.CLOSE: _S.CLOSED,
    Step.FAILED: _S.ERROR,
}

# The steps particular to each state; None means "stay".
_PARTICULAR_STEPS: Mapping[ClientState, Mapping[Step, ClientState | None]] = {
    _S.KEY_EXCHANGE: {
        Step.KEY_EXCHANGED: _S.AUTHENTICATING,
    },
    _S.AUTHENTICATING: {
        Step.KEY_RECEIVED: None,
        Step.TOKEN_REJECTED: None,  # fall back to getjwt on the same socket
        Step.AUTHENTICATED: _S.LOADING_STRUCTURE,
    },
    _S.LOADING_STRUCTURE: {
        Step.VERSION_CHANGED: None,  # now data/LoxAPP3.json
        Step.STRUCTURE_LOADED: _S.ENABLING_UPDATES,
        Step.STRUCTURE_UNCHANGED: _S.ENABLING_UPDATES,
        Step.STATE_TABLE: None,  # held until updates are enabled
    },
    _S.ENABLING_UPDATES: {
        Step.UPDATES_ENABLED: _S.STREAMING,
        Step.STATE_TABLE: None,  # held: the tables may come before the reply
    },
    _S.STREAMING: {
        Step.STATE_TABLE: None,
        Step.REQUEST_REFRESH: None,
        Step.REQUEST_KILL: None,
        Step.KEY_RECEIVED: None,
        Step.TOKEN_REFRESHED: None,
        Step.TOKEN_REJECTED: None,  # refresh refused: the session streams on
        Step.TOKEN_KILLED: _S.CLOSED,  # the Miniserver closes the socket of a killed token
    },
}


def _build_transitions() -> dict[tuple[ClientState, Step], ClientState]:
    table: dict[tuple[ClientState, Step], ClientState] = {
        (_S.IDLE, Step.START): _S.KEY_EXCHANGE,
        (_S.IDLE, Step.START_IN_CLEAR): _S.AUTHENTICATING,
        (_S.IDLE, Step.CLOSE): _S.CLOSED,
        (_S.CLOSED, Step.CLOSE): _S.CLOSED,  # closing twice is harmless
        (_S.ERROR, Step.CLOSE): _S.ERROR,  # error is sticky, but cleanup code may close
    }
    for state, particular in _PARTICULAR_STEPS.items():
        for step, target in {**_ACTIVE_STEPS, **particular}.items():
            table[state, step] = state if target is None else target
    return table


TRANSITIONS: Mapping[tuple[ClientState, Step], ClientState] = _build_transitions()
"""``(state, step) -> next state``; a pair that is missing is an illegal step."""

TOKEN_OPERATION_TRANSITIONS: Mapping[tuple[TokenOperation, Step], TokenOperation] = {
    (TokenOperation.NONE, Step.REQUEST_REFRESH): TokenOperation.REFRESHING,
    (TokenOperation.NONE, Step.REQUEST_KILL): TokenOperation.KILLING,
    (TokenOperation.REFRESHING, Step.KEY_RECEIVED): TokenOperation.REFRESHING,
    (TokenOperation.REFRESHING, Step.TOKEN_REFRESHED): TokenOperation.NONE,
    (TokenOperation.REFRESHING, Step.TOKEN_REJECTED): TokenOperation.NONE,
    (TokenOperation.KILLING, Step.KEY_RECEIVED): TokenOperation.KILLING,
    (TokenOperation.KILLING, Step.TOKEN_KILLED): TokenOperation.NONE,
}
"""The sub-table consulted for ``TOKEN_OPERATION_STEPS`` while STREAMING."""

TOKEN_OPERATION_STEPS = frozenset(step for _op, step in TOKEN_OPERATION_TRANSITIONS)


_STREAMING_STAYS = (Step.RECEIVE, Step.STATE_TABLE)
"""Steps that leave a STREAMING session as it is (its token operation too): the hot path."""
assert all(
    TRANSITIONS[ClientState.STREAMING, step] is ClientState.STREAMING
    and step not in TOKEN_OPERATION_STEPS
    for step in _STREAMING_STAYS
)


class Lifecycle:
    """The current state and token operation of one session; the only place they change."""

    def __init__(self) -> None:
        self.state = ClientState.IDLE
        self.token_operation = TokenOperation.NONE

    def __repr__(self) -> str:
        return f"<Lifecycle {self.state.name} token_operation={self.token_operation.name}>"

    def advance(self, step: Step, *, remote: bool = False) -> None:
        """Take ``step`` or raise: ``RemoteProtocolError`` if ``remote``, else
        ``LocalProtocolError`` (and the state becomes ``ERROR``)."""
        if self.state is ClientState.STREAMING and step in _STREAMING_STAYS:
            return  # every message while streaming: identity checks, no hashing of enum pairs
        target = TRANSITIONS.get((self.state, step))
        operation: TokenOperation | None = self.token_operation
        if self.state is ClientState.STREAMING and step in TOKEN_OPERATION_STEPS:
            operation = TOKEN_OPERATION_TRANSITIONS.get((self.token_operation, step))
        if target is None or operation is None:
            message = self._illegal(step)
            if remote:
                raise RemoteProtocolError(message)
            self.fail_locally()
            raise LocalProtocolError(message)
        self.state = target
        self.token_operation = operation if target is ClientState.STREAMING else TokenOperation.NONE

    def fail_locally(self) -> None:
        """Enter ``ERROR`` after the caller misused the session."""
        self.state = ClientState.ERROR
        self.token_operation = TokenOperation.NONE

    def _illegal(self, step: Step) -> str:
        where = self.state.name
        if self.token_operation is not TokenOperation.NONE:
            where += f" ({self.token_operation.name})"
        return f"{step.name} is not allowed in state {where}"


# --- requests -----------------------------------------------------------------------------------


class Request(enum.Enum):
    """The request in flight (at most one, §2.2): it decides what the next reply means."""

    KEY_EXCHANGE = enum.auto()
    HASH_KEY = enum.auto()  # getkey before authenticate (firmware before 9.3)
    HASH_AUTH = enum.auto()  # authenticate/{hash}
    LOGIN_KEY = enum.auto()  # getkey2 before getjwt/gettoken or authwithtoken
    TOKEN_AUTH = enum.auto()  # authwithtoken
    JWT = enum.auto()  # getjwt, or gettoken before firmware 10.1.12.5
    VERSION = enum.auto()  # LoxAPPversion3
    STRUCTURE = enum.auto()  # data/LoxAPP3.json
    ENABLE = enum.auto()  # enablebinstatusupdate
    TOKEN_KEY = enum.auto()  # getkey2 before refreshjwt or killtoken
    REFRESH = enum.auto()  # refreshjwt
    KILL = enum.auto()  # killtoken


_GETKEY2 = ("jdev/sys/getkey2/",)
# How the (decrypted, percent-decoded, jdev/-spelled, lower-cased) echo of each request starts.
ECHO_PREFIXES: Mapping[Request, tuple[str, ...]] = {
    Request.KEY_EXCHANGE: ("jdev/sys/keyexchange/",),
    Request.HASH_KEY: ("jdev/sys/getkey",),
    Request.HASH_AUTH: ("authenticate/", "jdev/sys/authenticate/"),
    Request.LOGIN_KEY: _GETKEY2,
    Request.TOKEN_AUTH: ("authwithtoken/", "jdev/sys/authwithtoken/"),
    Request.JWT: ("jdev/sys/getjwt/", "jdev/sys/gettoken/"),
    Request.VERSION: ("jdev/sps/loxappversion3",),
    Request.STRUCTURE: ("data/loxapp3.json",),
    Request.ENABLE: ("jdev/sps/enablebinstatusupdate",),
    Request.TOKEN_KEY: _GETKEY2,
    Request.REFRESH: ("jdev/sys/refreshjwt/", "jdev/sys/refreshtoken/"),
    Request.KILL: ("jdev/sys/killtoken/",),
}
SENT_IN_CLEAR = frozenset(
    {Request.KEY_EXCHANGE, Request.VERSION, Request.STRUCTURE, Request.ENABLE}
)


# --- events -------------------------------------------------------------------------------------

# Commands whose arguments carry a hash or a cipher: a repr shows only their verb.
_REDACTED_PREFIXES = (
    "jdev/sys/enc/",
    "jdev/sys/fenc/",
    "jdev/sys/keyexchange/",
    "jdev/sys/getjwt/",
    "jdev/sys/gettoken/",
    "authwithtoken/",
    "jdev/sys/refreshjwt/",
    "jdev/sys/refreshtoken/",
    "authenticate/",
    "jdev/sys/checktoken/",
    "jdev/sys/killtoken/",
)


def _command_repr(text: str) -> str:
    for prefix in _REDACTED_PREFIXES:
        if text.startswith(prefix):
            return repr(prefix + "…")
    return repr(text)


@attrs.frozen
class SendCommand:
    """Send ``text`` to the Miniserver now, as a WebSocket text frame."""

    text: str = attrs.field(repr=_command_repr)


@attrs.frozen(kw_only=True)
class StoredToken:
    """A token as the caller keeps it between connections and passes back for a login, a
    refresh or a kill: the session itself keeps none beyond the exchange that uses it.

    ``valid_until`` is in seconds since 2009-01-01 UTC; ``hash_algorithm`` is the ``hashAlg``
    of the getkey2 that came with it.
    """

    token: str = attrs.field(repr=False)
    valid_until: int
    hash_algorithm: HashAlgorithm
    client_uuid: str

    @property
    def valid_until_unix(self) -> int:
        return loxone_time_to_unix(self.valid_until)


@attrs.frozen
class TokenAcquired:
    """A new token from getjwt, or the refreshed one from refreshjwt: keep it (and store it)
    for later connections."""

    token: StoredToken


@attrs.frozen
class Authenticated:
    """The socket is authenticated: by getjwt/gettoken, by the stored token (``via_token``), or
    by a legacy hash login.

    ``token`` is the reply: validUntil, tokenRights, unsecurePass (warn about a weak password);
    its ``token`` is ``None`` after authwithtoken, whose reply carries none. A hash login (firmware
    before 9.3) has no token at all: ``token`` is ``None``.
    """

    token: TokenInfo | None
    via_token: bool


@attrs.frozen
class TokenRejected:
    """The Miniserver refused the stored token (401/477) or a refresh: forget the token."""

    code: int


@attrs.frozen
class StructureLoaded:
    """The structure file, as text; ``last_modified`` is what LoxAPPversion3 answered (cache
    it and pass it as ``cached_last_modified`` next time)."""

    text: str = attrs.field(repr=lambda text: f"<{len(text)} characters>")
    last_modified: str


@attrs.frozen
class StructureUnchanged:
    """LoxAPPversion3 equals the cached ``last_modified``: the structure was not downloaded."""

    last_modified: str


@attrs.frozen
class UpdatesEnabled:
    """enablebinstatusupdate succeeded; the initial tables follow (or come right after it)."""


@attrs.frozen
class UnexpectedReply:
    """A reply (or file) that answers nothing in flight: worth a log line, not fatal."""

    content: str | bytes = attrs.field(repr=False)
    reply: LLReply | None


@attrs.frozen
class TokenKilled:
    """The killtoken reply (``code`` 200 if the token is gone); the session is CLOSED."""

    code: int


@attrs.frozen
class SessionFailed:
    """The session is over (state ERROR): refused with Loxone ``code``, or, with ``code``
    ``None``, the Miniserver broke the protocol. ``auth_failure``: the user or password (not the
    token) is refused; retrying soon will not help and may get the user blocked (4003)."""

    reason: str
    code: int | None = None
    auth_failure: bool = False


SessionEvent = (
    SendCommand
    | Authenticated
    | TokenAcquired
    | TokenRejected
    | StructureLoaded
    | StructureUnchanged
    | UpdatesEnabled
    | ValueStatesReceived
    | TextStatesReceived
    | DaytimerStatesReceived
    | WeatherStatesReceived
    | KeepaliveReceived
    | OutOfService
    | UnexpectedReply
    | TokenKilled
    | SessionFailed
)
