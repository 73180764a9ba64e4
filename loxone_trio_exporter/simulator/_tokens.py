"""The token registry of one simulated Miniserver: issue, find by hash, refresh, kill, expire.

Tokens from getjwt look like JWTs (three Base64url parts); gettoken gives a legacy token of 40
upper-case hex characters. Clients treat both as opaque text. ``validUntil`` counts seconds since
2009-01-01 UTC (§4.2); ``tokenRights`` is the requested permission plus Op-Modes | AD | Adopt-UI,
which makes a Web token 1666 = 0x682 like a real reply.
"""

from __future__ import annotations

import base64
import enum
import hmac
import json
from collections.abc import Callable, Collection, Iterator

import attrs

from ..protocol import HashAlgorithm, loxone_time_to_unix, token_hash, unix_to_loxone_time

APP_TOKEN_LIFETIME = 30 * 86400.0  # permission 4 (App): "lives for weeks"
WEB_TOKEN_LIFETIME = 12 * 3600.0  # permission 2 (Web): observed ~12 h (§4.2)
EXTRA_TOKEN_RIGHTS = 0x80 | 0x200 | 0x400


def same_text(given: str, expected: str) -> bool:
    """Constant-time comparison of any two texts (``compare_digest`` wants ASCII for ``str``)."""
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass")
    )


def one_time_key(random_bytes: Callable[[int], bytes]) -> str:
    """A one-time key as real Miniservers give it: 20 random bytes as 40 upper-case hex
    characters, whose ASCII is hex-encoded again (80 characters; the HMAC key is the 40, §4.0)."""
    return random_bytes(20).hex().upper().encode("ascii").hex().upper()


@attrs.frozen(kw_only=True)
class IssuedToken:
    """A token handed out by getjwt/gettoken/refreshjwt; neither it nor its key is in the repr."""

    token: str = attrs.field(repr=False)
    valid_until: int  # seconds since 2009-01-01 UTC
    token_rights: int
    key: str = attrs.field(repr=False)
    user: str
    permission: int
    client_uuid: str
    unsecure_password: bool

    def token_value(self) -> dict[str, object]:
        """The ``LL.value`` of a getjwt/gettoken/refreshjwt reply."""
        return {"token": self.token, "key": self.key, **self.validity_value()}

    def validity_value(self) -> dict[str, object]:
        """The ``LL.value`` of an authwithtoken/checktoken reply (no token, no key)."""
        return {
            "validUntil": self.valid_until,
            "tokenRights": self.token_rights,
            "unsecurePass": self.unsecure_password,
        }


class TokenState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"  # known, but past validUntil or hit by expire_all: 477
    UNKNOWN = "unknown"  # never issued, refreshed away or killed: 401


@attrs.frozen
class TokenMatch:
    """The token a token hash names and its state; ``token`` is ``None`` when unknown."""

    state: TokenState
    token: IssuedToken | None = None


NO_MATCH = TokenMatch(TokenState.UNKNOWN)


class TokenRegistry:
    """Every token the simulated Miniserver issued and has not forgotten."""

    def __init__(
        self,
        random_bytes: Callable[[int], bytes],
        *,
        app_lifetime: float = APP_TOKEN_LIFETIME,
        web_lifetime: float = WEB_TOKEN_LIFETIME,
    ) -> None:
        self.app_lifetime = app_lifetime
        self.web_lifetime = web_lifetime
        self._random_bytes = random_bytes
        self._tokens: dict[str, IssuedToken] = {}
        self._expired: set[str] = set()

    def __len__(self) -> int:
        return len(self._tokens)

    def __iter__(self) -> Iterator[IssuedToken]:
        return iter(list(self._tokens.values()))

    def issue(
        self,
        user: str,
        *,
        permission: int,
        client_uuid: str,
        unsecure_password: bool,
        now_unix: float,
        jwt: bool = True,
    ) -> IssuedToken:
        """A new token; Web tokens (no App bit 4) live ``web_lifetime``, others ``app_lifetime``."""
        lifetime = self.app_lifetime if permission & 4 else self.web_lifetime
        valid_until = unix_to_loxone_time(int(now_unix)) + int(lifetime)
        if jwt:
            token = self._jwt(user, client_uuid, int(now_unix), valid_until)
        else:
            token = self._random_bytes(20).hex().upper()
        issued = IssuedToken(
            token=token,
            valid_until=valid_until,
            token_rights=permission | EXTRA_TOKEN_RIGHTS,
            key=one_time_key(self._random_bytes),
            user=user,
            permission=permission,
            client_uuid=client_uuid,
            unsecure_password=unsecure_password,
        )
        self._tokens[token] = issued
        return issued

    def _jwt(self, user: str, client_uuid: str, now: int, valid_until: int) -> str:
        header = {"typ": "JWT", "alg": "HS256"}
        claims = {
            "user": user,
            "uuid": client_uuid,
            "iat": now,
            "exp": loxone_time_to_unix(valid_until),
            "jti": self._random_bytes(8).hex(),
        }
        parts = [json.dumps(part).encode() for part in (header, claims)]
        parts.append(self._random_bytes(32))
        return ".".join(base64.urlsafe_b64encode(p).rstrip(b"=").decode("ascii") for p in parts)

    def state(self, token: str, now_unix: float) -> TokenState:
        issued = self._tokens.get(token)
        if issued is None:
            return TokenState.UNKNOWN
        if token in self._expired or unix_to_loxone_time(int(now_unix)) >= issued.valid_until:
            return TokenState.EXPIRED
        return TokenState.VALID

    def get(self, token: str) -> IssuedToken | None:
        return self._tokens.get(token)

    def match(
        self,
        user: str,
        hash_hex: str,
        key: str,
        algorithms: Collection[HashAlgorithm],
        now_unix: float,
    ) -> TokenMatch:
        """Which of ``user``'s tokens ``hash_hex`` = HMAC(key, token) names, with its state."""
        for issued in self._tokens.values():
            if issued.user == user and any(
                same_text(hash_hex, token_hash(issued.token, key, a)) for a in algorithms
            ):
                return TokenMatch(self.state(issued.token, now_unix), issued)
        return NO_MATCH

    def replace(self, old: IssuedToken, now_unix: float) -> IssuedToken:
        """The successor of ``old`` (same user, permission, client); ``old`` is forgotten."""
        self._tokens.pop(old.token, None)
        self._expired.discard(old.token)
        return self.issue(
            old.user,
            permission=old.permission,
            client_uuid=old.client_uuid,
            unsecure_password=old.unsecure_password,
            now_unix=now_unix,
        )

    def kill(self, token: str) -> bool:
        """Forget ``token``; whether it existed."""
        self._expired.discard(token)
        return self._tokens.pop(token, None) is not None

    def expire_all(self) -> None:
        """Make every issued token invalid (it stays known: 477 rather than 401)."""
        self._expired.update(self._tokens)
