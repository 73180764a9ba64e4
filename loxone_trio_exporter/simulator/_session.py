"""The server side of one Miniserver WebSocket, sans-IO: command text in, ``Output``s out.

The server owns the socket and the timers; it feeds every text message to
``ServerSession.receive`` and carries out what comes back, in order. Every hash is checked and
every encrypted command decrypted for real (protocol doc §4, §5, §9c). Choices made where the
documentation is silent or contradictory:

- ``control`` echoes the command with ``jdev/`` turned into ``dev/``. An ``enc`` reply echoes the
  request as received with its cipher percent-decoded and ``jdev/`` kept, as real Miniservers do
  (PyLoxone: "Encrypted strings returned by the miniserver are not %encoded"; loxwebsocket strips
  exactly ``jdev/sys/enc/`` before Base64-decoding). Inside a ``fenc`` reply ``control`` is the
  decrypted command, as in a real capture (§8.4).
- Status: ``"Code": "200"`` for normal commands and keyexchange; ``"code": 200`` (number) for
  getkey, getkey2, getjwt, gettoken; ``"code": "200"`` (string) for authwithtoken, refresh, check,
  kill and every refused auth command (loxwebsocket compares those with the string "200").
- Before authentication only keepalive, keyexchange, getkey, getkey2, getjwt, gettoken and
  authwithtoken are served (clear or encrypted); anything else is 400. keepalive is answered at
  any time: lxcommunicator sends it from the moment the socket is open.
- A one-time key (keyexchange, getkey, getkey2, or the ``key`` of a token reply) is consumed by
  the next command that checks a hash, whether the hash is right or not.
- Encrypted commands before a keyexchange, undecryptable ones and stale salts (see
  ``_encryption``) get 401, in clear. keyexchange inside ``enc``/``fenc`` is 400, as is the
  structure file by ``fenc`` ("only enc is supported" for files). A failed keyexchange is 401
  (lxcommunicator: "public key changed") and keeps the previous session key.
- getjwt/gettoken in clear over plain ``ws://`` are 400 ("Unencrypted getjwt requests will be
  declined with 400"); over TLS they are accepted (firmware >= 11.2).
- A refused login is 401 with ``{"lastEdit", "unix"}``; a known but expired token is 477.
- killtoken of this socket's own token: the reply, then ``Close(1000)``.
- ``on_auth_timeout``: a 420 reply, then ``Close(1008)`` (policy violation).
- Binary messages from the client: ``Close(1003)`` (RFC 6455: data it cannot accept).
- ``firmware`` (``_firmware.Firmware``) decides which login commands exist: ``authenticate/``
  before 9.3, tokens from 9.0.7.25, ``getjwt``/``refreshjwt`` from 10.1.12.5, ``checktoken``
  from 10.0.9.13, encryption from 8.1.10.14. A command the firmware lacks is answered as any
  unknown one: 400 before authentication, 404 after.
- enablebinstatusupdate: the reply, the full tables, then ``StartStreaming`` (tables first with
  ``tables_before_ack``); the full tables always precede any delta.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Protocol
from urllib.parse import unquote

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from ..errors import RemoteProtocolError
from ..protocol import (
    MessageIdentifier,
    ResponseCode,
    aes_encrypt_b64,
    decrypt_session_key,
    is_encrypted_command,
)
from ._accounts import Accounts, User
from ._auth_commands import (
    TOKEN_REQUESTS,
    TOKEN_VERBS,
    UNAUTHORIZED_VALUE,
    match_table,
    parse_token_args,
    parse_token_request,
    run_token_command,
    strip_prefix,
)
from ._encryption import CommandCrypto
from ._firmware import CURRENT, Firmware
from ._outputs import (
    Close,
    CodeStyle,
    Output,
    ReplyRoute,
    Send,
    StartStreaming,
    binary_message,
    echo,
    file_message,
    keepalive_message,
    ll_text,
    text_message,
)
from ._tokens import TokenState, one_time_key

__all__ = ["Close", "MiniserverData", "Output", "Send", "ServerSession", "StartStreaming"]

CLOSE_NORMAL = 1000
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_POLICY_VIOLATION = 1008

_BAD = ResponseCode.BAD_REQUEST
_UNAUTHORIZED = ResponseCode.UNAUTHORIZED


_Handler = Callable[[str, ReplyRoute, float], "list[Output] | None"]


class MiniserverData(Protocol):
    """What a session needs of the simulated Miniserver's data."""

    @property
    def last_modified(self) -> str: ...

    def structure_text(self) -> str: ...

    def full_tables(self) -> list[tuple[MessageIdentifier, bytes]]: ...


class ServerSession:
    """One WebSocket connection to the simulated Miniserver."""

    def __init__(
        self,
        accounts: Accounts,
        miniserver: MiniserverData,
        private_key: RSAPrivateKey,
        *,
        tls: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        estimated_headers: bool = False,
        tables_before_ack: bool = False,
        firmware: Firmware = CURRENT,
    ) -> None:
        self.firmware = firmware
        self.estimated_headers = estimated_headers
        self.tables_before_ack = tables_before_ack
        self._accounts = accounts
        self._miniserver = miniserver
        self._private_key = private_key
        self._tls = tls
        self._random_bytes = random_bytes
        self._crypto = CommandCrypto()
        self._one_time_key: str | None = None
        self._user: User | None = None
        self._token: str | None = None
        self._streaming = False
        self._closed = False

    def __repr__(self) -> str:
        user = self._user.name if self._user else None
        return f"<ServerSession user={user!r} streaming={self._streaming} closed={self._closed}>"

    @property
    def authenticated(self) -> bool:
        return self._user is not None

    @property
    def user(self) -> User | None:
        return self._user

    @property
    def token(self) -> str | None:
        """The token this socket authenticated with or acquired (a refresh replaces it)."""
        return self._token

    @property
    def streaming(self) -> bool:
        return self._streaming

    @property
    def closed(self) -> bool:
        """Whether a ``Close`` was returned; everything received afterwards is ignored."""
        return self._closed

    # --- input -----------------------------------------------------------------------------

    def receive(self, text: str, now_unix: float) -> list[Output]:
        """Handle one text message from the client; never raises, whatever the text."""
        if self._closed:
            return []
        if not is_encrypted_command(text) or not self.firmware.encryption:
            return self._dispatch(text, ReplyRoute(echo(text)), now_unix)
        route, command = self._crypto.open(text)
        if command is None:
            return [route.reply("", _UNAUTHORIZED, style=CodeStyle.COMMAND)]
        if is_encrypted_command(command):
            return [route.reply("", _BAD, style=CodeStyle.COMMAND)]
        return self._dispatch(command, route, now_unix)

    def receive_binary(self, data: bytes) -> list[Output]:
        """A Miniserver takes commands as text only: binary data closes the socket (1003)."""
        if self._closed:
            return []
        self._closed = True
        return [Close(CLOSE_UNSUPPORTED_DATA, "binary messages are not accepted")]

    def on_auth_timeout(self) -> list[Output]:
        """For the server's timer: nobody authenticated in time -> 420, then ``Close(1008)``."""
        if self._closed or self.authenticated:
            return []
        self._closed = True
        reply = text_message(ll_text("", "", ResponseCode.AUTH_TIMEOUT, CodeStyle.COMMAND))
        return [reply, Close(CLOSE_POLICY_VIOLATION, "not authenticated in time")]

    # --- dispatch --------------------------------------------------------------------------

    def _dispatch(self, command: str, route: ReplyRoute, now: float) -> list[Output]:
        lowered = command.lower()
        if lowered == "keepalive":
            return [keepalive_message()]
        if lowered == "jdev/sys/getkey":
            return [route.reply(self._new_key(), style=CodeStyle.KEY)]
        for handler in self._login_handlers:
            outputs = handler(command, route, now)
            if outputs is not None:
                return outputs
        if not self.authenticated:
            return [route.reply("", _BAD, style=CodeStyle.COMMAND)]
        for handler in self._command_handlers:
            outputs = handler(command, route, now)
            if outputs is not None:
                return outputs
        return [route.reply("", ResponseCode.NOT_FOUND, style=CodeStyle.COMMAND)]

    # Each handler returns None when the command is not its own; a firmware has those it knows.

    @property
    def _login_handlers(self) -> list[_Handler]:
        firmware = self.firmware
        handlers: list[_Handler] = []
        if firmware.encryption:
            handlers.append(self._keyexchange)
        if firmware.hash_login:
            handlers.append(self._legacy_login)
        if firmware.tokens:
            handlers += [self._getkey2, self._request_token, self._auth_token]
        return handlers

    @property
    def _command_handlers(self) -> list[_Handler]:
        if self.firmware.tokens:
            return [self._token_command, self._after_auth]
        return [self._after_auth]

    def _legacy_login(self, command: str, route: ReplyRoute, _now: float) -> list[Output] | None:
        args = strip_prefix(command, "authenticate/")
        if args is None:
            return None
        user = self._accounts.login_with_legacy_hash(unquote(args), self._take_key())
        if user is None:
            return [route.reply(UNAUTHORIZED_VALUE, _UNAUTHORIZED, style=CodeStyle.AUTH)]
        self._user = user
        return [route.reply("", style=CodeStyle.AUTH)]

    def _keyexchange(self, command: str, route: ReplyRoute, _now: float) -> list[Output] | None:
        args = strip_prefix(command, "jdev/sys/keyexchange/")
        if args is None:
            return None
        if route.encrypted:
            return [route.reply("", _BAD, style=CodeStyle.COMMAND)]
        try:
            session_key = decrypt_session_key(self._private_key, args)
        except RemoteProtocolError:
            return [route.reply("", _UNAUTHORIZED, style=CodeStyle.COMMAND)]
        self._crypto.start(session_key)
        value = aes_encrypt_b64(self._new_key(), session_key)
        return [route.reply(value, style=CodeStyle.COMMAND)]

    def _new_key(self) -> str:
        self._one_time_key = one_time_key(self._random_bytes)
        return self._one_time_key

    def _take_key(self) -> str | None:
        key, self._one_time_key = self._one_time_key, None
        return key

    def _getkey2(self, command: str, route: ReplyRoute, _now: float) -> list[Output] | None:
        args = strip_prefix(command, "jdev/sys/getkey2/")
        if args is None:
            return None
        if not args:
            return [route.reply("", _BAD, style=CodeStyle.KEY)]
        grant = self._accounts.key_grant(unquote(args), self._new_key())
        return [route.reply(grant.as_value(), style=CodeStyle.KEY)]

    def _request_token(self, command: str, route: ReplyRoute, now: float) -> list[Output] | None:
        found = match_table(command, TOKEN_REQUESTS)
        if found is None or (found[0] and not self.firmware.jwt):
            return None
        jwt, args = found
        request = parse_token_request(args)
        if request is None or not (route.encrypted or self._tls):
            return [route.reply("", _BAD, style=CodeStyle.AUTH)]
        key = self._take_key()
        user = self._accounts.login_with_credentials(request.user, request.hash_hex, key)
        if user is None:
            return [route.reply(UNAUTHORIZED_VALUE, _UNAUTHORIZED, style=CodeStyle.AUTH)]
        issued = self._accounts.issue_token(
            user, request.permission, request.client_uuid, now, jwt=jwt
        )
        self._user, self._token = user, issued.token
        self._one_time_key = issued.key  # "usable like a getkey result" (§4.2)
        return [route.reply(issued.token_value(), style=CodeStyle.KEY)]

    def _auth_token(self, command: str, route: ReplyRoute, now: float) -> list[Output] | None:
        args = strip_prefix(command, "authwithtoken/")
        if args is None:
            args = strip_prefix(command, "jdev/sys/authwithtoken/")
            if args is None:
                return None
        parsed = parse_token_args(args)
        if parsed is None:
            return [route.reply("", _BAD, style=CodeStyle.AUTH)]
        hash_hex, name = parsed
        match = self._accounts.login_with_token(name, hash_hex, self._take_key(), now)
        if match.token is None or match.state is not TokenState.VALID:
            return [_refused(route, match.state)]
        self._user = self._accounts.user(match.token.user)
        self._token = match.token.token
        return [route.reply(match.token.validity_value(), style=CodeStyle.AUTH)]

    def _token_command(self, command: str, route: ReplyRoute, now: float) -> list[Output] | None:
        found = match_table(command, TOKEN_VERBS)
        if found is None or not self._knows(command, found[0]):
            return None
        verb, args = found
        parsed = parse_token_args(args)
        if parsed is None:
            return [route.reply("", _BAD, style=CodeStyle.AUTH)]
        key = self._take_key()
        if key is None:
            return [route.reply(UNAUTHORIZED_VALUE, _UNAUTHORIZED, style=CodeStyle.AUTH)]
        hash_hex, name = parsed
        match = self._accounts.match_token(name, hash_hex, key, now)
        outcome = run_token_command(self._accounts, verb, match, now)
        outputs: list[Output] = [route.reply(outcome.value, outcome.code, style=CodeStyle.AUTH)]
        own = outcome.subject is not None and outcome.subject.token == self._token
        if outcome.replacement is not None:
            self._one_time_key = outcome.replacement.key
            if own:
                self._token = outcome.replacement.token
        elif own and verb == "kill":
            self._closed = True
            outputs.append(Close(CLOSE_NORMAL, "token killed"))
        return outputs

    def _knows(self, command: str, verb: str) -> bool:
        if verb == "check":
            return self.firmware.check_token
        if verb == "refresh" and command.lower().startswith("jdev/sys/refreshjwt/"):
            return self.firmware.jwt
        return True

    def _after_auth(self, command: str, route: ReplyRoute, _now: float) -> list[Output] | None:
        lowered = command.lower()
        if lowered == "jdev/sps/loxappversion3":
            return [route.reply(self._miniserver.last_modified, style=CodeStyle.COMMAND)]
        if lowered == "data/loxapp3.json":
            if route.fenc is not None:
                return [route.reply("", _BAD, style=CodeStyle.COMMAND)]
            text = self._miniserver.structure_text()
            return [file_message(text, estimated=self.estimated_headers)]
        if lowered == "jdev/sps/enablebinstatusupdate":
            ack: list[Output] = [route.reply("1", style=CodeStyle.COMMAND)]
            tables: list[Output] = [
                binary_message(identifier, payload)
                for identifier, payload in self._miniserver.full_tables()
            ]
            self._streaming = True
            ordered = tables + ack if self.tables_before_ack else ack + tables
            return [*ordered, StartStreaming()]
        return None


def _refused(route: ReplyRoute, state: TokenState) -> Send:
    if state is TokenState.EXPIRED:
        return route.reply("", ResponseCode.TOKEN_INVALID, style=CodeStyle.AUTH)
    return route.reply(UNAUTHORIZED_VALUE, _UNAUTHORIZED, style=CodeStyle.AUTH)
