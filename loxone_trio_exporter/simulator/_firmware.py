"""What a simulated Miniserver of a given firmware knows (protocol doc §4, lxcommunicator's
feature table in §4.2 and §9c item 7).

A command the firmware does not know falls through the session's dispatch like any unknown
command does: 400 before authentication ("any command other than auth/token commands before
authenticating"), 404 after it ("unrecognized command").
"""

from __future__ import annotations

import attrs

from ..protocol import JWT_FROM, TOKENS_ONLY_FROM, parse_firmware_version

#: The firmware the simulator announces unless told otherwise.
DEFAULT_FIRMWARE = "15.3.10.21"

ENCRYPTION_FROM = (8, 1, 10, 14)  # keyexchange, jdev/sys/enc, fenc
TOKENS_FROM = (9, 0, 7, 25)  # getkey2, gettoken, authwithtoken, refreshtoken, killtoken
HASH_LOGIN_UNTIL = TOKENS_ONLY_FROM  # authenticate/{hash} is gone from here on
CHECK_TOKEN_FROM = (10, 0, 9, 13)  # checktoken
# getjwt and refreshjwt from JWT_FROM (the facts the exporter's login follows, protocol._firmware)
HASH_ALG_FROM = (10, 4)  # getkey2 names its hashAlg, and SHA256 users exist
LOCAL_FLAG_FROM = (12, 1)  # apiKey says `local`


@attrs.frozen
class Firmware:
    """The commands and reply fields of one firmware version."""

    version: str
    encryption: bool
    tokens: bool
    hash_login: bool
    check_token: bool
    jwt: bool
    hash_alg: bool
    local_flag: bool

    @classmethod
    def of(cls, version: str) -> Firmware:
        """The features of ``version``; ``UnsupportedFirmware`` if it is not a version."""
        parsed = parse_firmware_version(version)
        return cls(
            version=version,
            encryption=parsed >= ENCRYPTION_FROM,
            tokens=parsed >= TOKENS_FROM,
            hash_login=parsed < HASH_LOGIN_UNTIL,
            check_token=parsed >= CHECK_TOKEN_FROM,
            jwt=parsed >= JWT_FROM,
            hash_alg=parsed >= HASH_ALG_FROM,
            local_flag=parsed >= LOCAL_FLAG_FROM,
        )


CURRENT = Firmware.of(DEFAULT_FIRMWARE)
