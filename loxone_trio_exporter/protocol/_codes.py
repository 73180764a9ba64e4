"""Named wire constants: message identifiers, LL response codes and WebSocket close codes.

Every value cites where it is documented; "[DOC]" is Loxone's "Communicating with the Miniserver"
(v16.0), the section named after it. See ``shared/docs/loxone-protocol.md`` sections 2 and 4.5.
"""

from __future__ import annotations

from enum import IntEnum


class MessageIdentifier(IntEnum):
    """Byte 1 of the 8-byte message header ([DOC] "Structure of the Message Header")."""

    TEXT = 0  # text message: a command reply, as a WebSocket text frame
    FILE = 1  # file: binary frame, or a text frame for text files such as LoxAPP3.json
    VALUE_STATES = 2  # event table of value states, 24-byte records
    TEXT_STATES = 3  # event table of text states, variable-length records
    DAYTIMER_STATES = 4  # event table of daytimer states
    OUT_OF_SERVICE = 5  # Miniserver going down (firmware update, config upload); no payload
    KEEPALIVE = 6  # answer to the "keepalive" command; no payload
    WEATHER_STATES = 7  # event table of weather states, 68-byte entries


class ResponseCode(IntEnum):
    """``LL.Code`` / ``LL.code`` values ([DOC] "Error-Codes"; lxcommunicator ``ResponseCode``)."""

    OK = 200
    BAD_REQUEST = 400  # e.g. a non-auth command before authenticating; unencrypted getjwt
    UNAUTHORIZED = 401  # wrong credentials, stale one-time key, or an undecryptable command
    FORBIDDEN = 403  # not enough rights ([DOC]); lxcommunicator calls it BLOCKED_TEMP
    NOT_FOUND = 404  # unrecognised command or unknown control
    AUTH_TIMEOUT = 420  # no authentication within the first seconds; the socket closes
    USER_DISABLED = 423  # [DOC]; lxcommunicator names it FORBIDDEN
    UPDATE_REQUIRED = 426  # Miniserver update required (lxcommunicator)
    TOKEN_INVALID = 477  # token no longer valid, "like a 401" (lxcommunicator)
    SECURED_COMMAND_FAILED = 500  # wrong visualisation password ([DOC] "Secured Commands")
    SERVICE_UNAVAILABLE = 503  # Miniserver restarting
    TOO_MANY_CONNECTIONS = 901  # maximum number of concurrent connections reached


class CloseCode(IntEnum):
    """WebSocket close codes the Miniserver uses ([DOC] "Websocket Close Codes")."""

    NORMAL = 1000  # RFC 6455; also seen on config upload
    BLOCKED = 4003  # too many failed logins; the reason text may carry the seconds "(NN)"
    SOME_USER_CHANGED = 4004  # some user was changed
    CURRENT_USER_CHANGED = 4005  # the connected user was changed
    USER_DISABLED = 4006  # the connected user was disabled
    UPDATE_IN_PROGRESS = 4007  # firmware update in progress
    NO_EVENT_SLOTS = 4008  # all 31 event slots are taken
