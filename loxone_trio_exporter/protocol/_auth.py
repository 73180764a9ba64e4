"""Token authentication: hashes, reply parsers and command strings (protocol doc §4.0-4.2).

The flow this module serves::

    getkey2/{user}          -> KeyInfo (one-time key, user salt, hash algorithm)
    getjwt/{hash}/{user}/…  -> TokenInfo (token, validUntil, tokenRights, …)
    later connections:  getkey2 -> authwithtoken/{HMAC(key, token)}/{user}

Every function here is pure. The one-time key is hex text whose *decoded* bytes are the HMAC key;
the user salt is used as the text it is, never hex-decoded (§4.0). Secrets never appear in an
exception message or a repr.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from enum import IntEnum, StrEnum
from urllib.parse import quote

import attrs

from ..errors import RemoteProtocolError
from ._checks import UINT32_MAX, ascii_text, describe, whole_number

# validUntil counts seconds since 2009-01-01T00:00:00Z; UTC as in lxcommunicator and loxone-java
# (protocol doc §4.2, §9 item 6).
LOXONE_EPOCH_UNIX = 1230768000

# Bounds for what getkey2 and the token replies carry. Real values: a one-time key of 80 hex
# characters, a salt of 32 to 72, JWTs of a few hundred characters (protocol doc §4.0, §8.4); the
# bounds leave room for other firmware while keeping hostile megabyte strings out of the hashes.
MAX_KEY_HEX_LENGTH = 1024
MAX_SALT_LENGTH = 1024
MAX_TOKEN_LENGTH = 4096  # the token store keeps no longer ones either
MAX_HASH_ALGORITHM_LENGTH = 16


class HashAlgorithm(StrEnum):
    """The ``hashAlg`` of a getkey2 reply: the hash for pwHash and the HMAC ([DOC] "Hashing")."""

    SHA1 = "SHA1"
    SHA256 = "SHA256"  # since firmware 10.4

    @classmethod
    def from_reply(cls, value: object) -> HashAlgorithm:
        """Read ``hashAlg``; absent (``None``) means SHA1, as older firmware sends none."""
        if value is None:
            return cls.SHA1
        if isinstance(value, str) and len(value) <= MAX_HASH_ALGORITHM_LENGTH:
            for member in cls:
                if member.value == value.strip().upper():
                    return member
        raise RemoteProtocolError(f"unknown hashAlg {describe(value)}")


class TokenPermission(IntEnum):
    """The ``{permission}`` of getjwt/gettoken ([DOC] "Permissions")."""

    WEB = 2  # short-lived, about 12 hours
    APP = 4  # lives for weeks: the right choice for a long-running exporter


# --- hashes -------------------------------------------------------------------------------------


def password_hash(password: str, user_salt: str, algorithm: HashAlgorithm) -> str:
    """``UPPER(HEX(H("{password}:{userSalt}")))`` with the salt used as its (hex) text."""
    digest = hashlib.new(_hashlib_name(algorithm), f"{password}:{user_salt}".encode())
    return digest.hexdigest().upper()


def hmac_hex(key_hex: str, message: str, algorithm: HashAlgorithm) -> str:
    """Lowercase hex HMAC of ``message`` keyed with the *decoded* one-time key.

    The key comes from the Miniserver, so a malformed one is a ``RemoteProtocolError``.
    """
    key = _decode_key_hex(key_hex)
    return hmac.new(key, message.encode(), _hashlib_name(algorithm)).hexdigest()


def credential_hash(
    user: str, password: str, key_hex: str, user_salt: str, algorithm: HashAlgorithm
) -> str:
    """The ``{hash}`` of getjwt/gettoken: ``HMAC(key, "{user}:{pwHash}")``."""
    return hmac_hex(key_hex, f"{user}:{password_hash(password, user_salt, algorithm)}", algorithm)


def token_hash(token: str, key_hex: str, algorithm: HashAlgorithm) -> str:
    """The ``{hash}`` of authwithtoken, refreshjwt, checktoken and killtoken.

    It is the HMAC of the token alone, not of ``user:token`` as an older spec said (§9 item 5).
    """
    return hmac_hex(key_hex, token, algorithm)


def _hashlib_name(algorithm: HashAlgorithm) -> str:
    return algorithm.value.lower()


def _decode_key_hex(key_hex: str) -> bytes:
    # Never put the key into the message: it is a (one-time) secret.
    if len(key_hex) > MAX_KEY_HEX_LENGTH:
        raise RemoteProtocolError(
            f"one-time key has {len(key_hex)} hex characters, at most {MAX_KEY_HEX_LENGTH} expected"
        )
    try:
        key = bytes.fromhex(key_hex)
    except ValueError:
        raise RemoteProtocolError(
            f"one-time key is not hex text ({len(key_hex)} characters)"
        ) from None
    if not key:
        raise RemoteProtocolError("one-time key is empty")
    return key


# --- replies ------------------------------------------------------------------------------------


@attrs.frozen
class KeyInfo:
    """The ``LL.value`` of ``jdev/sys/getkey2/{user}``."""

    key_hex: str = attrs.field(repr=False)
    salt: str = attrs.field(repr=False)
    hash_algorithm: HashAlgorithm = HashAlgorithm.SHA1


def parse_getkey2_value(value: object) -> KeyInfo:
    """Validate the already-parsed ``LL.value`` of a getkey2 reply."""
    fields = _require_mapping(value, "getkey2")
    key_hex = fields.get("key")
    salt = fields.get("salt")
    if not isinstance(key_hex, str) or not isinstance(salt, str) or not salt:
        raise RemoteProtocolError("getkey2 reply: key and salt must be non-empty strings")
    _decode_key_hex(key_hex)  # fail here, not later inside a hash
    # The salt is hashed as the text it is: it must encode (no lone surrogates) and stay short.
    ascii_text(salt, "getkey2 reply: salt", max_length=MAX_SALT_LENGTH, quote=False)
    return KeyInfo(
        key_hex=key_hex,
        salt=salt,
        hash_algorithm=HashAlgorithm.from_reply(fields.get("hashAlg")),
    )


@attrs.frozen(kw_only=True)
class TokenInfo:
    """The ``LL.value`` of getjwt, gettoken, refreshjwt and authwithtoken replies.

    ``token`` is ``None`` for authwithtoken (its reply carries none); ``key_hex`` is ``None`` when
    the reply has no ``key``. ``valid_until`` is in seconds since 2009-01-01 UTC.
    """

    token: str | None = attrs.field(repr=False)
    key_hex: str | None = attrs.field(default=None, repr=False)
    valid_until: int
    token_rights: int
    unsecure_password: bool = False

    @property
    def valid_until_unix(self) -> int:
        """``valid_until`` as Unix time."""
        return loxone_time_to_unix(self.valid_until)


def parse_token_value(value: object) -> TokenInfo:
    """Validate the already-parsed ``LL.value`` of a token reply."""
    fields = _require_mapping(value, "token")
    token = fields.get("token")
    if token is not None:
        # Hashed for every later authwithtoken/refreshjwt and written to the token store.
        token = ascii_text(token, "token reply: token", max_length=MAX_TOKEN_LENGTH, quote=False)
    key_hex = fields.get("key")
    if key_hex is not None:
        key_hex = ascii_text(
            key_hex,
            "token reply: key",
            max_length=MAX_KEY_HEX_LENGTH,
            allow_empty=True,
            quote=False,
        )
    return TokenInfo(
        token=token,
        key_hex=key_hex,
        valid_until=_loxone_time(fields.get("validUntil"), "token reply: validUntil"),
        # A bit set ([DOC] "List of permission bit-flags"), a uint32 like every Loxone bit map.
        token_rights=whole_number(
            fields.get("tokenRights"), "token reply: tokenRights", low=0, high=UINT32_MAX
        ),
        unsecure_password=_optional_bool(fields.get("unsecurePass"), "unsecurePass"),
    )


def _loxone_time(raw: object, what: str) -> int:
    """A Loxone time from the wire: whole seconds since 2009-01-01 UTC, a uint32 on the
    Miniserver (so it always converts to a finite float and a valid date)."""
    return whole_number(raw, what, low=0, high=UINT32_MAX)


def loxone_time_to_unix(seconds: int) -> int:
    """Seconds since 2009-01-01 UTC (Loxone's epoch) to Unix time."""
    return seconds + LOXONE_EPOCH_UNIX


def unix_to_loxone_time(unix_seconds: int) -> int:
    """Unix time to seconds since 2009-01-01 UTC (Loxone's epoch)."""
    return unix_seconds - LOXONE_EPOCH_UNIX


def _require_mapping(value: object, what: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise RemoteProtocolError(
            f"{what} reply: LL.value is not an object: {type(value).__name__}"
        )
    return value


def _optional_bool(raw: object, name: str) -> bool:
    if raw is None:
        return False
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false", 0, 1):
        return raw in ("true", 1)
    raise RemoteProtocolError(f"token reply: {name} must be true or false, got {describe(raw)}")


# --- commands -----------------------------------------------------------------------------------
# Path segments are percent-encoded with safe="" so that a user name or client description can
# never add a path segment. The hashes are hex and pass through unchanged.


def _segment(text: str) -> str:
    return quote(text, safe="")


def getkey_command() -> str:
    """Legacy one-time key request (no salt, no hash algorithm)."""
    return "jdev/sys/getkey"


def legacy_hash(user: str, password: str, key_hex: str) -> str:
    """The hash of a legacy login (firmware before 9.3, §4.1): HMAC-SHA1 of ``user:password``
    keyed with the decoded one-time key of ``jdev/sys/getkey``."""
    return hmac_hex(key_hex, f"{user}:{password}", HashAlgorithm.SHA1)


def authenticate_command(hash_hex: str) -> str:
    """Log in the legacy way (firmware before 9.3); ``hash_hex`` comes from ``legacy_hash``."""
    return f"authenticate/{_segment(hash_hex)}"


def getkey2_command(user: str) -> str:
    """One-time key, user salt and hash algorithm for ``user``."""
    return f"jdev/sys/getkey2/{_segment(user)}"


def getjwt_command(
    hash_hex: str, user: str, permission: int, client_uuid: str, client_info: str
) -> str:
    """Request a JWT (firmware >= 10.2); ``hash_hex`` comes from ``credential_hash``."""
    return _token_request(
        "getjwt",
        hash_hex,
        user,
        permission=permission,
        client_uuid=client_uuid,
        client_info=client_info,
    )


def gettoken_command(
    hash_hex: str, user: str, permission: int, client_uuid: str, client_info: str
) -> str:
    """Request a legacy token (firmware < 10.2); same arguments as ``getjwt_command``."""
    return _token_request(
        "gettoken",
        hash_hex,
        user,
        permission=permission,
        client_uuid=client_uuid,
        client_info=client_info,
    )


def _token_request(
    verb: str, hash_hex: str, user: str, *, permission: int, client_uuid: str, client_info: str
) -> str:
    # quote(safe="") leaves only unreserved characters; lxcommunicator also turns "/" into a
    # space, which the encoding already made impossible.
    info = _segment(client_info)
    return (
        f"jdev/sys/{verb}/{_segment(hash_hex)}/{_segment(user)}/{int(permission)}/"
        f"{_segment(client_uuid)}/{info}"
    )


def authwithtoken_command(hash_hex: str, user: str) -> str:
    """Authenticate this socket with a stored token; ``hash_hex`` comes from ``token_hash``."""
    return f"authwithtoken/{_segment(hash_hex)}/{_segment(user)}"


def refreshjwt_command(hash_hex: str, user: str) -> str:
    """Renew the token; the reply carries a new one (``token_hash`` of the current one)."""
    return f"jdev/sys/refreshjwt/{_segment(hash_hex)}/{_segment(user)}"


def refreshtoken_command(hash_hex: str, user: str) -> str:
    """Renew a legacy token (firmware before 10.1.12.5); the reply may carry a new one."""
    return f"jdev/sys/refreshtoken/{_segment(hash_hex)}/{_segment(user)}"


def checktoken_command(hash_hex: str, user: str) -> str:
    """Check a token without renewing it (firmware >= 10.0)."""
    return f"jdev/sys/checktoken/{_segment(hash_hex)}/{_segment(user)}"


def killtoken_command(hash_hex: str, user: str) -> str:
    """Invalidate a token; killing the current socket's token closes the socket."""
    return f"jdev/sys/killtoken/{_segment(hash_hex)}/{_segment(user)}"


def keyexchange_command(encrypted_session_key_b64: str) -> str:
    """Send the RSA-encrypted session key.

    The Base64 goes raw, not percent-encoded: the Miniserver does not URL-decode it (§4.3).
    """
    return f"jdev/sys/keyexchange/{encrypted_session_key_b64}"
