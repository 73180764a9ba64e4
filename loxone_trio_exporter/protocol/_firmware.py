"""Which login a firmware takes, from the version it announces (protocol doc §4.1, §4.2, §9c).

| firmware | login | a stored token is used with |
|---|---|---|
| 8.0 to 9.2 | ``getkey``, then ``authenticate/{HMAC-SHA1(user:password)}`` | (no token) |
| 9.3 to 10.1.12.4 | ``getkey2``, then ``gettoken`` | ``authwithtoken``, ``refreshtoken`` |
| 10.1.12.5 on | ``getkey2``, then ``getjwt`` | ``authwithtoken``, ``refreshjwt`` |

``killtoken`` ends a token of either kind.

Tokens came with 9.0.7.25 and hash logins went with 9.3 (lxcommunicator's feature table:
``NON_TOKEN_AUTH_SUPPORTED`` below 9.3, ``JWT_SUPPORT`` from 10.1.12.5). From 9.0 to 9.2, where
both exist, the hash login is used: it needs no key exchange and leaves no token behind. Firmware
before 8.0 is older than any client this follows was written for, and a version that is not
dot-separated numbers says nothing: both are refused with an error that names what the
Miniserver announced.
"""

from __future__ import annotations

import enum
import re

from ..errors import RemoteProtocolError

#: The oldest firmware whose login we know (the WebSocket API with ``jdev/sys/getkey``).
OLDEST_KNOWN = (8, 0)
#: From here on the hash login is gone: tokens only.
TOKENS_ONLY_FROM = (9, 3)
#: From here on tokens are JWTs, requested with ``getjwt`` and refreshed with ``refreshjwt``.
JWT_FROM = (10, 1, 12, 5)
#: The greatest part a version number may have: real ones have at most five digits.
_MAX_PART = 10**9
_VERSION = re.compile(r"\d{1,10}(?:\.\d{1,10}){0,5}")


class LoginEra(enum.Enum):
    """How a Miniserver of a given firmware is logged in to."""

    HASH = "hash"  # getkey + authenticate: no token, a password hash on every connection
    TOKEN = "token"  # noqa: S105 - getkey2 + gettoken: a legacy token, kept and refreshed
    JWT = "jwt"  # getkey2 + getjwt: a JWT, kept and refreshed

    @property
    def has_tokens(self) -> bool:
        return self is not LoginEra.HASH


class UnsupportedFirmware(RemoteProtocolError):
    """The Miniserver announced a firmware whose login this exporter does not know."""


def parse_firmware_version(text: str) -> tuple[int, ...]:
    """``"10.1.12.5"`` -> ``(10, 1, 12, 5)``; ``UnsupportedFirmware`` if it is not numbers."""
    if not _VERSION.fullmatch(text):
        shown = repr(text[:40]) if text else "no version"
        raise UnsupportedFirmware(
            f"the Miniserver announces firmware {shown}, which is not a version this exporter "
            "can read (expected numbers separated by dots, such as 14.5.12.7)"
        )
    return tuple(min(int(part), _MAX_PART) for part in text.split("."))


def login_era(version: str) -> LoginEra:
    """The login for firmware ``version`` (see the module's table)."""
    parsed = parse_firmware_version(version)
    if parsed < OLDEST_KNOWN:
        raise UnsupportedFirmware(
            f"the Miniserver announces firmware {version}, older than 8.0, whose login this "
            "exporter does not know; update the Miniserver's firmware"
        )
    if parsed < TOKENS_ONLY_FROM:
        return LoginEra.HASH
    if parsed < JWT_FROM:
        return LoginEra.TOKEN
    return LoginEra.JWT
