"""Command encryption on the server side of one socket: the session key and the salt rules.

Salt rules (§4.3; the documentation only says a salt may be rotated with ``nextSalt``):

- ``salt/{s}/…`` with the current salt is fine (clients reuse a salt for a while); with a salt
  never used on this socket it is accepted and becomes the current salt; with a salt that was
  current before (rotated away) it is stale: 401.
- ``nextSalt/{cur}/{next}/…`` needs ``cur`` to be the current salt and ``next`` never used;
  ``next`` becomes the current salt. A ``nextSalt`` on a socket that has no salt yet is 401, like
  the "spurious 401" loxwebsocket got after reconnecting with a stale salt.
- A new key exchange forgets every salt.
"""

from __future__ import annotations

from urllib.parse import unquote

from ..errors import RemoteProtocolError
from ..protocol import EncryptedCommand, SessionKey, decode_encrypted_command
from ._outputs import ReplyRoute


class CommandCrypto:
    """The session key and salts of one socket. Secrets stay out of the repr."""

    def __init__(self) -> None:
        self.session_key: SessionKey | None = None
        self._salt: str | None = None
        self._used_salts: set[str] = set()

    def __repr__(self) -> str:
        return f"<CommandCrypto keyed={self.session_key is not None}>"

    def start(self, session_key: SessionKey) -> None:
        """A (new) key exchange: use ``session_key`` from now on, with no salt yet."""
        self.session_key = session_key
        self._salt = None
        self._used_salts.clear()

    def open(self, request: str) -> tuple[ReplyRoute, str | None]:
        """Decrypt an ``enc``/``fenc`` request (``is_encrypted_command`` said it is one).

        Returns how to reply, and the command, or ``None`` when the request must get 401: no key
        exchange yet, undecryptable, or a stale salt. The reply to ``enc`` echoes the request
        with its cipher percent-decoded; ``fenc`` replies are encrypted and echo the command.
        """
        cut = request.index("enc/") + len("enc/")  # after jdev/sys/enc/ or …/fenc/
        route = ReplyRoute(request[:cut] + unquote(request[cut:]), encrypted=True)
        session_key = self.session_key
        if session_key is None:
            return route, None
        try:
            decoded = decode_encrypted_command(request, session_key)
        except RemoteProtocolError:
            return route, None
        if decoded.encrypt_response:
            route = ReplyRoute(decoded.command, encrypted=True, fenc=session_key)
        return route, decoded.command if self._accept_salt(decoded) else None

    def _accept_salt(self, decoded: EncryptedCommand) -> bool:
        if decoded.next_salt is None:
            if decoded.salt == self._salt:
                return True
            if decoded.salt in self._used_salts:
                return False
            self._use(decoded.salt)
            return True
        if self._salt is None or decoded.salt != self._salt:
            return False
        if decoded.next_salt in self._used_salts:
            return False
        self._use(decoded.next_salt)
        return True

    def _use(self, salt: str) -> None:
        self._salt = salt
        self._used_salts.add(salt)
