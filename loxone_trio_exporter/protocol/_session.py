"""The client side of one Miniserver WebSocket, sans-IO: messages in, events and commands out.

The caller opens the socket, sends what ``start()`` returns, feeds every WebSocket message to
``receive()`` and sends the text of every ``SendCommand`` it gets back, in order. The session
never touches a socket, a clock or a random source: the session key, IV and salt are arguments.
The lifecycle is the table in ``_session_states``. Choices (protocol doc §4, §5, §9b):

- getkey2, getjwt, authwithtoken, refreshjwt and killtoken go as ``jdev/sys/enc/`` (as PyLoxone,
  loxwebsocket, openHAB do); LoxAPPversion3, data/LoxAPP3.json (never ``fenc``) and
  enablebinstatusupdate go in clear, which every Miniserver accepts after authentication. With
  ``tls=True`` there is no key exchange and everything goes in clear (firmware >= 11.2, §4.4).
- One request is in flight at a time and replies are matched by order (§2.2). A reply whose
  ``control`` echo (decrypted if it is an ``enc`` cipher) does not start like the request in
  flight, or that arrives when nothing is in flight, is an ``UnexpectedReply``: reported, never
  fatal. An empty echo is matched by order alone (error replies may carry none).
- A 401/477 to authwithtoken means the stored token is no good: ``TokenRejected``, then getkey2
  and getjwt on the same socket. 401/403/423 to getkey2/getjwt/authwithtoken is an
  authentication failure; a 420 anywhere ends the session.
- State tables that arrive before updates are enabled (even before the structure) are held and
  delivered in arrival order right after ``UpdatesEnabled``, or before the event that ends the
  session: never dropped.
- Token hashes use the ``hashAlg`` of the getkey2 fetched right before (LxCommunicator.NET,
  PyLoxone; §4.2); refresh and kill therefore fetch a fresh key first.
- Anything malformed from the Miniserver becomes ``SessionFailed`` (state ERROR); ``receive``
  raises only ``LocalProtocolError``, when the caller feeds a session that is not active.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from ..errors import LocalProtocolError, RemoteProtocolError
from ._auth import (
    HashAlgorithm,
    KeyInfo,
    TokenPermission,
    authenticate_command,
    authwithtoken_command,
    credential_hash,
    getjwt_command,
    getkey2_command,
    getkey_command,
    gettoken_command,
    keyexchange_command,
    killtoken_command,
    legacy_hash,
    parse_getkey2_value,
    parse_token_value,
    refreshjwt_command,
    refreshtoken_command,
    token_hash,
)
from ._codes import ResponseCode
from ._crypto import (
    SessionKey,
    decrypt_control_echo,
    encrypt_command,
    encrypt_session_key,
    is_encrypted_command,
    load_public_key,
)
from ._events import Event, FileReceived, KeepaliveReceived, OutOfService, TextReply
from ._firmware import LoginEra
from ._reader import MessageReader
from ._replies import LLReply, normalize_command, parse_structure_version, value_as_mapping
from ._session_states import (
    ECHO_PREFIXES,
    SENT_IN_CLEAR,
    Authenticated,
    ClientState,
    Lifecycle,
    Request,
    SendCommand,
    SessionEvent,
    SessionFailed,
    Step,
    StoredToken,
    StructureLoaded,
    StructureUnchanged,
    TokenAcquired,
    TokenKilled,
    TokenOperation,
    TokenRejected,
    UnexpectedReply,
    UpdatesEnabled,
)

__all__ = [
    "AUTH_FAILURE_CODES",
    "TOKEN_REJECTION_CODES",
    "Authenticated",
    "ClientSession",
    "ClientState",
    "SendCommand",
    "SessionEvent",
    "SessionFailed",
    "StoredToken",
    "StructureLoaded",
    "StructureUnchanged",
    "TokenAcquired",
    "TokenKilled",
    "TokenOperation",
    "TokenRejected",
    "UnexpectedReply",
    "UpdatesEnabled",
    "token_refresh_delay",
]

KEEPALIVE_COMMAND = "keepalive"
VERSION_COMMAND = "jdev/sps/LoxAPPversion3"
STRUCTURE_COMMAND = "data/LoxAPP3.json"
ENABLE_UPDATES_COMMAND = "jdev/sps/enablebinstatusupdate"
DEFAULT_CLIENT_INFO = "loxone-trio-exporter"
MAX_PERMISSION = 0x1FFFF  # every permission bit the documentation lists (§4.2)
MAX_TOKEN_REFRESH_DELAY_SECONDS = 86400.0  # refresh at least daily (lxcommunicator, PyLoxone)

#: Codes to getkey2/getjwt/authwithtoken meaning "this user does not get in" (§4.5).
AUTH_FAILURE_CODES = frozenset(
    {ResponseCode.UNAUTHORIZED, ResponseCode.FORBIDDEN, ResponseCode.USER_DISABLED}
)
#: Codes to authwithtoken meaning "this token is no good": forget it, log in with the password.
TOKEN_REJECTION_CODES = frozenset({ResponseCode.UNAUTHORIZED, ResponseCode.TOKEN_INVALID})


def token_refresh_delay(
    valid_until_unix: float,
    now_unix: float,
    *,
    fraction: float = 0.5,
    max_delay_seconds: float = MAX_TOKEN_REFRESH_DELAY_SECONDS,
    min_delay_seconds: float = 0.0,
) -> float:
    """Seconds to wait before refreshing a token: ``fraction`` of its remaining life, at most
    ``max_delay_seconds``, 0 if it has expired (§4.2 "Refresh scheduling": at most half, daily).
    At half the life, the hours of doubt about validUntil's time zone cannot matter.

    ``min_delay_seconds`` is a floor for callers that refresh again after every refresh: a
    Miniserver answering each refreshjwt with a validUntil in the past would otherwise be asked
    again at once, forever."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    delay = min(max_delay_seconds, (valid_until_unix - now_unix) * fraction)
    return max(0.0, min_delay_seconds, delay)


class _CommandCipher:
    """The session key and the current salt: wraps commands as ``jdev/sys/enc/…``."""

    def __init__(self, session_key: SessionKey, salt: str) -> None:
        _check_salt(salt, "salt")
        self.session_key = session_key
        self.salt = salt

    def wrap(self, command: str, next_salt: str | None) -> str:
        text = encrypt_command(command, self.session_key, self.salt, next_salt=next_salt)
        if next_salt is not None:
            self.salt = next_salt
        return text

    def echoed_command(self, control: str) -> str | None:
        """The command an ``enc`` echo stands for; ``None`` if it cannot be decrypted."""
        try:
            return decrypt_control_echo(control, self.session_key)
        except RemoteProtocolError:
            return None


class ClientSession:
    """One WebSocket session with a Miniserver, from key exchange to streaming.

    ``user``/``password``: the Miniserver user. ``public_key_text``: the Miniserver's public key
    (getPublicKey or getcertificate, any form ``load_public_key`` takes; a bad one raises
    ``RemoteProtocolError`` here). ``session_key``/``salt``: fresh random AES key+IV and a salt
    (hex text) for this socket. All three are required unless ``tls`` (then they are ignored).
    ``client_uuid``/``client_info``/``permission``: the getjwt arguments (4 = App, long-lived).
    ``stored_token``: authenticate with it instead of the password (fallback to getjwt if it is
    refused); the session keeps it only until the login is done: the caller holds the token.
    ``cached_last_modified``: the ``lastModified`` of the structure the caller has; when
    LoxAPPversion3 answers the same, the structure is not downloaded (``None``: always).
    ``era``: how this firmware logs in (``login_era`` of its version): getjwt, gettoken, or a
    hash login without key exchange or token (then neither a public key nor a stored token).
    """

    def __init__(
        self,
        user: str,
        password: str,
        *,
        client_uuid: str,
        public_key_text: str | None = None,
        session_key: SessionKey | None = None,
        salt: str | None = None,
        client_info: str = DEFAULT_CLIENT_INFO,
        permission: int = TokenPermission.APP,
        stored_token: StoredToken | None = None,
        cached_last_modified: str | None = None,
        tls: bool = False,
        era: LoginEra = LoginEra.JWT,
    ) -> None:
        if not user:
            raise ValueError("user must not be empty")
        if not client_uuid:
            raise ValueError("client_uuid must not be empty")
        if not 0 <= permission <= MAX_PERMISSION:
            raise ValueError(f"permission must be a bit set up to {MAX_PERMISSION:#x}")
        if not era.has_tokens and stored_token is not None:
            raise ValueError("a hash login (firmware before 9.3) has no token to log in with")
        self._era = era
        self._cipher: _CommandCipher | None = None
        self._keyexchange: str | None = None
        if not tls and era.has_tokens:
            if public_key_text is None or session_key is None or salt is None:
                raise ValueError("public_key_text, session_key and salt are required unless tls")
            self._cipher = _CommandCipher(session_key, salt)
            public_key = load_public_key(public_key_text)
            self._keyexchange = keyexchange_command(encrypt_session_key(public_key, session_key))
        self._user = user
        self._password = password
        self._client_uuid = client_uuid
        self._client_info = client_info
        self._permission = int(permission)
        self._cached_last_modified = cached_last_modified
        self._lifecycle = Lifecycle()
        self._reader = MessageReader()
        # Borrowed from the caller for one exchange: the login, or a refresh or kill under way.
        self._token: StoredToken | None = stored_token
        self._hash_algorithm = HashAlgorithm.SHA1  # of the latest getkey2
        self._server_version = ""
        self._pending: Request | None = None
        self._held: list[SessionEvent] = []

    def __repr__(self) -> str:
        return f"<ClientSession user={self._user!r} state={self.state.name}>"

    # --- what the caller may look at ----------------------------------------------------------

    @property
    def state(self) -> ClientState:
        return self._lifecycle.state

    @property
    def token_operation(self) -> TokenOperation:
        """The token refresh or kill under way inside STREAMING, if any."""
        return self._lifecycle.token_operation

    @property
    def user(self) -> str:
        return self._user

    @property
    def awaiting_reply(self) -> bool:
        """Whether the answer to a command (or the structure file) is still awaited.

        A reply the session cannot use (an unparseable code, a wrong echo) is reported as
        ``UnexpectedReply`` and the wait goes on; the session has no clock, so the caller bounds
        how long it waits, as it does for keepalive answers.
        """
        return self._pending is not None

    # --- what the caller does ----------------------------------------------------------------

    def start(self) -> list[str]:
        """The first commands to send once the socket is open (the key exchange)."""
        if not self._era.has_tokens:
            self._lifecycle.advance(Step.START_IN_CLEAR)
            return [self._send(Request.HASH_KEY, getkey_command()).text]
        if self._keyexchange is None:
            self._lifecycle.advance(Step.START_IN_CLEAR)
            return [self._send(Request.LOGIN_KEY, getkey2_command(self._user)).text]
        self._lifecycle.advance(Step.START)
        self._pending = Request.KEY_EXCHANGE
        return [self._keyexchange]

    def receive(self, message: bytes | bytearray | memoryview | str) -> list[SessionEvent]:
        """Take one whole WebSocket message; return what it means and what to send next.

        Raises ``LocalProtocolError`` only when the session is not active (before ``start``,
        after it ended); a Miniserver fault comes back as ``SessionFailed``.
        """
        self._lifecycle.advance(Step.RECEIVE)
        try:
            event = self._reader.receive(message)
            return [] if event is None else self._on_event(event)
        except RemoteProtocolError as exc:
            return self._fail(str(exc))

    def keepalive_command(self) -> str:
        """The keepalive command; its answer is a ``KeepaliveReceived``."""
        self._lifecycle.advance(Step.SEND_KEEPALIVE)
        return KEEPALIVE_COMMAND

    def request_token_refresh(
        self, token: StoredToken, *, next_salt: str | None = None
    ) -> list[str]:
        """Start refreshing ``token`` (STREAMING only): getkey2 now, refreshjwt after its reply.

        The outcome is a ``TokenAcquired`` (keep it) or a ``TokenRejected``. ``next_salt``
        rotates the salt with ``nextSalt/…`` (protocol doc §4.3).
        """
        return self._start_token_operation(Step.REQUEST_REFRESH, token, next_salt)

    def kill_token_commands(self, token: StoredToken, *, next_salt: str | None = None) -> list[str]:
        """Start invalidating ``token`` (STREAMING only), e.g. before exiting: getkey2 now,
        killtoken after its reply, then ``TokenKilled`` and CLOSED (the Miniserver closes)."""
        return self._start_token_operation(Step.REQUEST_KILL, token, next_salt)

    def close(self) -> None:
        """The socket is closed or given up: CLOSED (an ERROR session stays in ERROR)."""
        self._lifecycle.advance(Step.CLOSE)
        self._pending = None

    def _start_token_operation(
        self, step: Step, token: StoredToken, next_salt: str | None
    ) -> list[str]:
        if next_salt is not None:
            if self._cipher is None:
                raise ValueError("next_salt needs command encryption, which tls does without")
            _check_salt(next_salt, "next_salt")
        if not self._era.has_tokens:
            self._lifecycle.fail_locally()
            raise LocalProtocolError("a hash login (firmware before 9.3) has no token")
        self._lifecycle.advance(step)
        self._token = token
        return [self._send(Request.TOKEN_KEY, getkey2_command(self._user), next_salt).text]

    def _borrowed_token(self) -> StoredToken:
        # Only _start_token_operation sends TOKEN_KEY, and it hands the token over first; a
        # reply out of turn never reaches the handlers (``_answers``).
        assert self._token is not None
        return self._token

    # --- what comes in ---------------------------------------------------------------------

    def _on_event(self, event: Event) -> list[SessionEvent]:
        if isinstance(event, TextReply):
            return self._on_text(event)
        if isinstance(event, FileReceived):
            return self._on_file(event.content)
        if isinstance(event, KeepaliveReceived):
            self._lifecycle.advance(Step.KEEPALIVE, remote=True)
            return [event]
        if isinstance(event, OutOfService):
            held = self._release_held()
            self._lifecycle.advance(Step.OUT_OF_SERVICE, remote=True)
            self._pending = None
            return [*held, event]
        self._lifecycle.advance(Step.STATE_TABLE, remote=True)
        if self.state is ClientState.STREAMING:
            return [event]
        self._held.append(event)
        return []

    def _on_text(self, event: TextReply) -> list[SessionEvent]:
        request, reply = self._pending, event.reply
        if reply is not None and reply.code == ResponseCode.AUTH_TIMEOUT:
            return self._fail("not authenticated in time", code=reply.code)
        if request is Request.STRUCTURE and reply is None:
            return self._on_structure(event.text)  # a text file after a header with id 0
        if request is None or reply is None or not self._answers(reply, request):
            return self._unexpected(event.text, reply)
        self._pending = None
        return _REPLY_HANDLERS[request](self, reply)

    def _on_file(self, content: str | bytes) -> list[SessionEvent]:
        if self._pending is Request.STRUCTURE:
            return self._on_structure(content)
        return self._unexpected(content, None)

    def _answers(self, reply: LLReply, request: Request) -> bool:
        control: str | None = reply.control
        if not control:
            return True
        if is_encrypted_command(reply.control):
            control = None if self._cipher is None else self._cipher.echoed_command(reply.control)
            if control is None:
                return False
        echoed = normalize_command(unquote(control)).lower()
        return echoed.startswith(ECHO_PREFIXES[request])

    def _unexpected(self, content: str | bytes, reply: LLReply | None) -> list[SessionEvent]:
        self._lifecycle.advance(Step.UNEXPECTED_REPLY, remote=True)
        return [UnexpectedReply(content, reply)]

    def _on_keyexchange(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:  # 401: the public key changed (lxcommunicator aborts, §4.3)
            return self._refused("keyexchange", reply)
        self._lifecycle.advance(Step.KEY_EXCHANGED, remote=True)
        return [self._send(Request.LOGIN_KEY, getkey2_command(self._user))]

    def _on_hash_key(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("getkey", reply, authenticating=True)
        if not isinstance(reply.value, str):
            raise RemoteProtocolError("getkey reply: the key must be a string")
        hash_hex = legacy_hash(self._user, self._password, reply.value)
        self._lifecycle.advance(Step.KEY_RECEIVED, remote=True)
        return [self._send(Request.HASH_AUTH, authenticate_command(hash_hex))]

    def _on_hash_auth(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("authenticate", reply, authenticating=True)
        self._lifecycle.advance(Step.AUTHENTICATED, remote=True)
        return [Authenticated(None, via_token=False), self._send(Request.VERSION, VERSION_COMMAND)]

    def _on_login_key(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("getkey2", reply, authenticating=True)
        key = self._key_info(reply)
        self._lifecycle.advance(Step.KEY_RECEIVED, remote=True)
        if self._token is not None:
            hash_hex = token_hash(self._token.token, key.key_hex, key.hash_algorithm)
            return [self._send(Request.TOKEN_AUTH, authwithtoken_command(hash_hex, self._user))]
        hash_hex = credential_hash(
            self._user, self._password, key.key_hex, key.salt, key.hash_algorithm
        )
        request = getjwt_command if self._era is LoginEra.JWT else gettoken_command
        command = request(
            hash_hex, self._user, self._permission, self._client_uuid, self._client_info
        )
        return [self._send(Request.JWT, command)]

    def _on_token_auth(self, reply: LLReply) -> list[SessionEvent]:
        if reply.code in TOKEN_REJECTION_CODES:
            self._lifecycle.advance(Step.TOKEN_REJECTED, remote=True)
            self._token = None
            getkey2 = self._send(Request.LOGIN_KEY, getkey2_command(self._user))
            return [TokenRejected(reply.code), getkey2]
        if not reply.ok:
            return self._refused("authwithtoken", reply, authenticating=True)
        info = parse_token_value(_mapping(reply.value, "authwithtoken"))
        self._lifecycle.advance(Step.AUTHENTICATED, remote=True)
        self._token = None  # the caller keeps it, with the validUntil of ``Authenticated``
        return [Authenticated(info, via_token=True), self._send(Request.VERSION, VERSION_COMMAND)]

    def _on_jwt(self, reply: LLReply) -> list[SessionEvent]:
        verb = "getjwt" if self._era is LoginEra.JWT else "gettoken"
        if not reply.ok:
            return self._refused(verb, reply, authenticating=True)
        info = parse_token_value(_mapping(reply.value, verb))
        if info.token is None:
            raise RemoteProtocolError(f"{verb} reply carries no token")
        self._lifecycle.advance(Step.AUTHENTICATED, remote=True)
        return [
            self._acquired(info.token, info.valid_until),
            Authenticated(info, via_token=False),
            self._send(Request.VERSION, VERSION_COMMAND),
        ]

    def _on_version(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("LoxAPPversion3", reply)
        version = parse_structure_version(reply.value)
        if version == self._cached_last_modified:
            self._lifecycle.advance(Step.STRUCTURE_UNCHANGED, remote=True)
            enable = self._send(Request.ENABLE, ENABLE_UPDATES_COMMAND)
            return [StructureUnchanged(version), enable]
        self._lifecycle.advance(Step.VERSION_CHANGED, remote=True)
        self._server_version = version
        return [self._send(Request.STRUCTURE, STRUCTURE_COMMAND)]

    def _on_structure_reply(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("data/LoxAPP3.json", reply)
        raise RemoteProtocolError("an LL reply came where the structure file was expected")

    def _on_structure(self, content: str | bytes) -> list[SessionEvent]:
        if isinstance(content, bytes):
            try:
                content = content.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise RemoteProtocolError("structure file is not UTF-8", offset=exc.start) from None
        self._lifecycle.advance(Step.STRUCTURE_LOADED, remote=True)
        self._pending = None
        loaded = StructureLoaded(content, self._server_version)
        return [loaded, self._send(Request.ENABLE, ENABLE_UPDATES_COMMAND)]

    def _on_enable(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("enablebinstatusupdate", reply)
        self._lifecycle.advance(Step.UPDATES_ENABLED, remote=True)
        return [UpdatesEnabled(), *self._release_held()]

    def _on_token_key(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:
            return self._refused("getkey2", reply)
        key = self._key_info(reply)
        self._lifecycle.advance(Step.KEY_RECEIVED, remote=True)
        hash_hex = token_hash(self._borrowed_token().token, key.key_hex, key.hash_algorithm)
        if self.token_operation is TokenOperation.KILLING:
            return [self._send(Request.KILL, killtoken_command(hash_hex, self._user))]
        refresh = refreshjwt_command if self._era is LoginEra.JWT else refreshtoken_command
        return [self._send(Request.REFRESH, refresh(hash_hex, self._user))]

    def _on_refresh(self, reply: LLReply) -> list[SessionEvent]:
        if not reply.ok:  # the socket stays authenticated; only the token is gone
            self._lifecycle.advance(Step.TOKEN_REJECTED, remote=True)
            self._token = None
            return [TokenRejected(reply.code)]
        info = parse_token_value(_mapping(reply.value, "refreshjwt"))
        token = info.token or self._borrowed_token().token  # no token: the old one was renewed
        self._lifecycle.advance(Step.TOKEN_REFRESHED, remote=True)
        self._token = None
        return [self._acquired(token, info.valid_until)]

    def _on_kill(self, reply: LLReply) -> list[SessionEvent]:
        held = self._release_held()
        self._lifecycle.advance(Step.TOKEN_KILLED, remote=True)
        self._token = None
        return [*held, TokenKilled(reply.code)]

    # --- helpers ---------------------------------------------------------------------------

    def _send(self, request: Request, command: str, next_salt: str | None = None) -> SendCommand:
        self._pending = request
        if self._cipher is None or request in SENT_IN_CLEAR:
            return SendCommand(command)
        return SendCommand(self._cipher.wrap(command, next_salt))

    def _key_info(self, reply: LLReply) -> KeyInfo:
        info = parse_getkey2_value(_mapping(reply.value, "getkey2"))
        self._hash_algorithm = info.hash_algorithm
        return info

    def _acquired(self, token: str, valid_until: int) -> TokenAcquired:
        return TokenAcquired(
            StoredToken(
                token=token,
                valid_until=valid_until,
                hash_algorithm=self._hash_algorithm,
                client_uuid=self._client_uuid,
            )
        )

    def _release_held(self) -> list[SessionEvent]:
        held, self._held = self._held, []
        return held

    def _refused(
        self, what: str, reply: LLReply, *, authenticating: bool = False
    ) -> list[SessionEvent]:
        auth_failure = authenticating and reply.code in AUTH_FAILURE_CODES
        return self._fail(f"{what} refused with code {reply.code}", reply.code, auth_failure)

    def _fail(
        self, reason: str, code: int | None = None, auth_failure: bool = False
    ) -> list[SessionEvent]:
        held = self._release_held()
        self._lifecycle.advance(Step.FAILED, remote=True)
        self._pending = None
        return [*held, SessionFailed(reason, code, auth_failure)]


_REPLY_HANDLERS: Mapping[Request, Callable[[ClientSession, LLReply], list[SessionEvent]]] = {
    Request.KEY_EXCHANGE: ClientSession._on_keyexchange,
    Request.HASH_KEY: ClientSession._on_hash_key,
    Request.HASH_AUTH: ClientSession._on_hash_auth,
    Request.LOGIN_KEY: ClientSession._on_login_key,
    Request.TOKEN_AUTH: ClientSession._on_token_auth,
    Request.JWT: ClientSession._on_jwt,
    Request.VERSION: ClientSession._on_version,
    Request.STRUCTURE: ClientSession._on_structure_reply,
    Request.ENABLE: ClientSession._on_enable,
    Request.TOKEN_KEY: ClientSession._on_token_key,
    Request.REFRESH: ClientSession._on_refresh,
    Request.KILL: ClientSession._on_kill,
}


def _mapping(value: object, what: str) -> dict[str, Any]:
    # value_as_mapping quotes the value in its message; these values hold keys and tokens.
    try:
        return value_as_mapping(value)
    except RemoteProtocolError:
        raise RemoteProtocolError(f"{what} reply: LL.value is not an object") from None


def _check_salt(salt: str, name: str) -> None:
    if not salt or "/" in salt or "\0" in salt:
        raise ValueError(f"{name} must be non-empty and contain neither '/' nor NUL")
