"""Users, one-time keys and tokens of one simulated Miniserver, shared by all its connections.

Choices (protocol doc §4, §9c):

- A user's salt is fixed for the user (a real Miniserver changes it with the password): the hex
  of a UUID-like text, e.g. ``3134…`` = hex("14f29674-0291-287b-ffffa524b5c580fb").
- ``getkey2`` for an unknown user still answers with a key and a salt (derived from the name, so
  it is stable), not 404: nothing tells which user names exist, and the login that follows fails
  with 401 like a wrong password.
- With ``omit_hash_alg`` (firmware before 10.4) getkey2 has no ``hashAlg`` and every user hashes
  with SHA1.
- Credential hashes must use the user's algorithm (a wrong one is 401). Token hashes may also use
  SHA256 (unless ``omit_hash_alg``): lxcommunicator hashes tokens with SHA256 on firmware >= 10.4
  whatever the user's ``hashAlg`` (§9c item 7), so a real Miniserver accepts that.
- HTTP logins (§9c item 11): the one-time key belongs to the user, not to a TCP connection. Each
  user keeps up to ``MAX_HTTP_KEYS`` outstanding keys so that several clients may log in side by
  side; a successful use consumes the key it used. A failed one consumes nothing: it cannot
  tell whose key it was meant for, and burning one would break another client's login.
- Login attempts (what ``fail_next_logins`` and the counters see): getjwt/gettoken,
  authwithtoken, and the HTTP logins (getjwt/gettoken, ``autht``, Basic). Refresh, check and kill
  are not logins.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Iterable

import attrs

from ..protocol import HashAlgorithm, credential_hash, legacy_hash
from ._auth_commands import http_command
from ._tokens import (
    APP_TOKEN_LIFETIME,
    NO_MATCH,
    WEB_TOKEN_LIFETIME,
    IssuedToken,
    TokenMatch,
    TokenRegistry,
    TokenState,
    one_time_key,
    same_text,
)

UNSECURE_PASSWORD_LENGTH = 8
MAX_HTTP_KEYS = 8


@attrs.frozen
class User:
    """A Miniserver user; the password never appears in a repr."""

    name: str
    password: str = attrs.field(repr=False)
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA256

    @property
    def unsecure_password(self) -> bool:
        """What a Miniserver reports as ``unsecurePass``: a password shorter than 8 characters."""
        return len(self.password) < UNSECURE_PASSWORD_LENGTH


def parse_user_spec(spec: str) -> User:
    """``NAME:PASSWORD[:SHA1|SHA256]`` (default SHA256) to a ``User``.

    The name ends at the first ``:``; a last ``:SHA1``/``:SHA256`` (any case) names the algorithm,
    so a password may contain ``:``. A ``ValueError`` message never holds the password.
    """
    name, sep, rest = spec.partition(":")
    if not sep or not name.strip():
        raise ValueError("a user is given as NAME:PASSWORD[:SHA1|SHA256]; the name is missing")
    if "/" in name:
        raise ValueError(f"user name {name!r} must not contain '/'")
    algorithm = HashAlgorithm.SHA256
    password, sep, tail = rest.rpartition(":")
    if sep and tail.upper() in {a.value for a in HashAlgorithm}:
        algorithm = HashAlgorithm(tail.upper())
    elif sep and re.fullmatch(r"(?i)(sha|md)[0-9_-]*", tail):
        raise ValueError(f"unknown hash algorithm {tail!r} for user {name!r}; use SHA1 or SHA256")
    else:
        password = rest
    if not password:
        raise ValueError(f"user {name!r} has an empty password")
    return User(name=name, password=password, hash_algorithm=algorithm)


@attrs.frozen(kw_only=True)
class KeyGrant:
    """A getkey2 answer; ``hash_algorithm`` is ``None`` when the firmware omits ``hashAlg``."""

    key: str = attrs.field(repr=False)
    salt: str
    hash_algorithm: HashAlgorithm | None

    def as_value(self) -> dict[str, str]:
        """The ``LL.value`` of a getkey2 reply."""
        value = {"key": self.key, "salt": self.salt}
        if self.hash_algorithm is not None:
            value["hashAlg"] = self.hash_algorithm.value
        return value


class Accounts:
    """Users and tokens of one simulated Miniserver (mutable; shared by its connections)."""

    def __init__(
        self,
        users: Iterable[User] = (),
        *,
        omit_hash_alg: bool = False,
        random_bytes: Callable[[int], bytes] = os.urandom,
        app_token_lifetime: float = APP_TOKEN_LIFETIME,
        web_token_lifetime: float = WEB_TOKEN_LIFETIME,
    ) -> None:
        self.omit_hash_alg = omit_hash_alg
        self.logins_ok = 0
        self.logins_failed = 0
        self.tokens = TokenRegistry(
            random_bytes, app_lifetime=app_token_lifetime, web_lifetime=web_token_lifetime
        )
        self._random_bytes = random_bytes
        self._users: dict[str, User] = {}
        self._salts: dict[str, str] = {}
        self._http_keys: dict[str, list[str]] = {}
        self._fail_next = 0
        self._unknown_user_secret = random_bytes(32)
        for user in users:
            self.add_user(user)

    def __repr__(self) -> str:
        return f"<Accounts users={sorted(self._users)} tokens={len(self.tokens)}>"

    # --- users and keys --------------------------------------------------------------------

    def add_user(self, user: User) -> None:
        """Add or replace a user; a new salt is drawn (as on a password change)."""
        self._users[user.name] = user
        self._salts[user.name] = _salt_text(self._random_bytes(16))
        self._http_keys.pop(user.name, None)

    def user(self, name: str) -> User | None:
        return self._users.get(name)

    @property
    def users(self) -> tuple[User, ...]:
        return tuple(self._users.values())

    def hash_algorithm(self, user: User) -> HashAlgorithm:
        """The algorithm ``user`` hashes credentials with (SHA1 for all under omit_hash_alg)."""
        return HashAlgorithm.SHA1 if self.omit_hash_alg else user.hash_algorithm

    def new_one_time_key(self) -> str:
        return one_time_key(self._random_bytes)

    def key_grant(self, name: str, key: str) -> KeyGrant:
        """The getkey2 answer for ``name`` with the one-time ``key`` (unknown users included)."""
        user = self._users.get(name)
        if user is None:
            digest = hmac.new(self._unknown_user_secret, name.encode(), hashlib.sha256).digest()
            salt, algorithm = _salt_text(digest[:16]), HashAlgorithm.SHA256
        else:
            salt, algorithm = self._salts[name], user.hash_algorithm
        return KeyGrant(
            key=key, salt=salt, hash_algorithm=None if self.omit_hash_alg else algorithm
        )

    # --- logins ----------------------------------------------------------------------------

    def fail_next_logins(self, count: int) -> None:
        """Fault ``auth_fail``: the next ``count`` login attempts fail even when correct."""
        self._fail_next = max(0, count)

    def _admit(self, ok: bool) -> bool:
        if self._fail_next > 0:
            self._fail_next -= 1
            ok = False
        if ok:
            self.logins_ok += 1
        else:
            self.logins_failed += 1
        return ok

    def _credentials_match(self, name: str, hash_hex: str, key: str) -> User | None:
        user = self._users.get(name)
        if user is None:
            return None
        salt, algorithm = self._salts[name], self.hash_algorithm(user)
        expected = credential_hash(user.name, user.password, key, salt, algorithm)
        return user if same_text(hash_hex, expected) else None

    def login_with_credentials(self, name: str, hash_hex: str, key: str | None) -> User | None:
        """A getjwt/gettoken login with the socket's one-time ``key`` (``None``: it has none)."""
        user = None if key is None else self._credentials_match(name, hash_hex, key)
        return user if self._admit(user is not None) else None

    def login_with_legacy_hash(self, hash_hex: str, key: str | None) -> User | None:
        """An ``authenticate/{hash}`` login (firmware before 9.3): the hash names no user, so
        every user is tried, as the Miniserver must."""
        found = None
        if key is not None:
            for user in self._users.values():
                if same_text(hash_hex, legacy_hash(user.name, user.password, key)):
                    found = user
                    break
        return found if self._admit(found is not None) else None

    def login_with_token(
        self, name: str, hash_hex: str, key: str | None, now_unix: float
    ) -> TokenMatch:
        """An authwithtoken login; a failure forced by ``fail_next_logins`` is UNKNOWN (401)."""
        match = NO_MATCH if key is None else self.match_token(name, hash_hex, key, now_unix)
        return match if self._admit(match.state is TokenState.VALID) else _demote(match)

    def check_password(self, name: str, password: str) -> bool:
        """HTTP Basic authentication; a login attempt."""
        user = self._users.get(name)
        return self._admit(user is not None and same_text(password, user.password))

    # --- HTTP: the one-time key belongs to the user (§9c item 11) ---------------------------

    def http_command(self, command: str, now_unix: float) -> str | None:
        """The LL reply to an auth command sent by HTTP GET (getkey2, getjwt, gettoken,
        refreshjwt, refreshtoken, checktoken, killtoken), or ``None`` for any other command."""
        return http_command(self, command, now_unix)

    def issue_http_key(self, name: str) -> KeyGrant:
        """The answer to ``GET /jdev/sys/getkey2/{name}``; the key is remembered for ``name``."""
        key = self.new_one_time_key()
        if name in self._users:
            keys = self._http_keys.setdefault(name, [])
            keys.append(key)
            del keys[:-MAX_HTTP_KEYS]
        return self.key_grant(name, key)

    def http_login_with_credentials(self, name: str, hash_hex: str) -> User | None:
        """An HTTP getjwt/gettoken: tries the user's outstanding keys; a login attempt."""
        found = self._take_http_key(name, lambda k: self._credentials_match(name, hash_hex, k))
        user = self._users.get(name) if found else None
        return user if self._admit(user is not None) else None

    def http_match_token(self, name: str, hash_hex: str, now_unix: float) -> TokenMatch:
        """A token hash made with one of the user's outstanding HTTP keys (not a login)."""
        found: list[TokenMatch] = []

        def matches(key: str) -> bool:
            found.append(self.match_token(name, hash_hex, key, now_unix))
            return found[-1].state is not TokenState.UNKNOWN

        return found[-1] if self._take_http_key(name, matches) else NO_MATCH

    def http_login_with_token(self, name: str, hash_hex: str, now_unix: float) -> TokenMatch:
        """An HTTP ``?autht={hash}&user={name}`` login; a login attempt."""
        match = self.http_match_token(name, hash_hex, now_unix)
        return match if self._admit(match.state is TokenState.VALID) else _demote(match)

    def _take_http_key(self, name: str, matches: Callable[[str], object]) -> bool:
        keys = self._http_keys.get(name, [])
        for key in keys:
            if matches(key):
                keys.remove(key)
                return True
        return False

    # --- tokens ----------------------------------------------------------------------------

    def issue_token(
        self, user: User, permission: int, client_uuid: str, now_unix: float, *, jwt: bool = True
    ) -> IssuedToken:
        """A new token for ``user`` (JWT-shaped unless ``jwt`` is false)."""
        return self.tokens.issue(
            user.name,
            permission=permission,
            client_uuid=client_uuid,
            unsecure_password=user.unsecure_password,
            now_unix=now_unix,
            jwt=jwt,
        )

    def lookup(self, token: str, now_unix: float) -> IssuedToken | None:
        """The token if it is valid now (e.g. for ``Authorization: Bearer``), else ``None``."""
        if self.tokens.state(token, now_unix) is TokenState.VALID:
            return self.tokens.get(token)
        return None

    def token_valid(self, token: str, now_unix: float) -> bool:
        return self.lookup(token, now_unix) is not None

    def match_token(self, name: str, hash_hex: str, key: str, now_unix: float) -> TokenMatch:
        """Which of ``name``'s tokens ``hash_hex`` (= HMAC(key, token)) names, and its state."""
        user = self._users.get(name)
        if user is None:
            return NO_MATCH
        algorithms = {self.hash_algorithm(user)}
        if not self.omit_hash_alg:
            algorithms.add(HashAlgorithm.SHA256)
        return self.tokens.match(name, hash_hex, key, algorithms, now_unix)

    def refresh(self, token: str, now_unix: float) -> IssuedToken | None:
        """A new token replacing ``token`` if it is valid; the old one is unknown afterwards."""
        issued = self.lookup(token, now_unix)
        return None if issued is None else self.tokens.replace(issued, now_unix)

    def kill(self, token: str) -> bool:
        """Invalidate ``token``; whether it existed."""
        return self.tokens.kill(token)

    def expire_all(self) -> None:
        """Fault ``token_expire``: every issued token becomes invalid (477 when used)."""
        self.tokens.expire_all()


def _demote(match: TokenMatch) -> TokenMatch:
    """A login refused by ``fail_next_logins``: a valid token is treated as unknown (401)."""
    return NO_MATCH if match.state is TokenState.VALID else match


def _salt_text(raw: bytes) -> str:
    """A user salt as real Miniservers give it: the hex of a UUID-like ASCII text."""
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:32]}".encode("ascii").hex().upper()
