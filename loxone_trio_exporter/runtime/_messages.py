"""What connection tasks tell the state owner: frozen messages over one bounded memory channel.

Every message names its Miniserver (the config ``name``, which is the ``miniserver`` label). A
connection task sends them in the order things happen on its socket; the state owner is the only
reader and the only holder of mutable state. Nothing here carries a password, token or key.
"""

from __future__ import annotations

import enum

import attrs

from ..state import TableEvent
from ..structure import StructureLayout
from ._backpressure import TableBudget


class ConnectionState(enum.Enum):
    """Where a connection task is; the landing page and ``/healthz`` show ``value``."""

    CONNECTING = "connecting"  # HTTP probe, TCP/TLS, WebSocket upgrade, key exchange
    AUTHENTICATING = "authenticating"
    LOADING = "loading structure"
    STREAMING = "streaming"
    WAITING = "waiting to reconnect"
    STOPPED = "stopped"


class ReconnectReason(enum.Enum):
    """Why a session ended; the ``reason`` label of ``loxone_exporter_reconnects_total``."""

    UNREACHABLE = "unreachable"  # TCP, TLS or HTTP failed, or no answer in time
    BOOTING = "booting"  # apiKey answered 503, or the upgrade was refused with 503
    AUTH_FAILED = "auth_failed"  # user or password refused
    CLOSED = "closed"  # the Miniserver closed the socket (close code in the detail)
    CONNECTION_LOST = "connection_lost"  # the socket broke without a close frame (1006)
    KEEPALIVE_TIMEOUT = "keepalive_timeout"  # no answer to keepalive in time
    IDLE_TIMEOUT = "idle_timeout"  # nothing at all received for too long
    REPLY_TIMEOUT = "reply_timeout"  # a command the session needs went without a usable answer
    OUT_OF_SERVICE = "out_of_service"  # header identifier 5: the Miniserver is rebooting
    PROTOCOL_ERROR = "protocol_error"  # a malformed frame or reply
    REFUSED = "refused"  # a Loxone error code to a command the session needs
    STRUCTURE_ERROR = "structure_error"  # LoxAPP3.json could not be read
    UNSUPPORTED_FIRMWARE = "unsupported_firmware"  # a firmware whose login is not known
    TLS_ERROR = "tls_error"  # certificate not accepted, or no TLS handshake
    BLOCKED = "blocked"  # close code 4003: too many failed logins from this address
    USER_CHANGED = "user_changed"  # close code 4004 or 4005: the stored token is dropped
    USER_DISABLED = "user_disabled"  # close code 4006, or Loxone code 423
    UPDATING = "update_in_progress"  # close code 4007: a firmware update
    NO_EVENT_SLOTS = "no_event_slots"  # close code 4008: 31 clients already receive events
    INTERNAL_ERROR = "internal_error"  # a defect of the exporter, contained to this Miniserver


@attrs.frozen
class StatusChanged:
    """The connection task moved to ``state``; ``detail`` says what happened, in plain words.

    ``retry_in_seconds`` is set with ``WAITING``: how long until the next try.
    """

    miniserver: str
    state: ConnectionState
    detail: str = ""
    retry_in_seconds: float | None = None


@attrs.frozen
class MiniserverIdentified:
    """What ``jdev/cfg/apiKey`` said: serial number and firmware version."""

    miniserver: str
    serial: str
    firmware: str


@attrs.frozen
class StructureReady:
    """A structure was loaded (parsed and laid out off the event loop), or reused from before.

    ``layout`` is all the exporter keeps of the structure file (the parsed ``Structure`` is
    dropped once it is built); ``last_modified`` is what LoxAPPversion3 answered (the
    structure's ``lastModified``).
    """

    miniserver: str
    layout: StructureLayout = attrs.field(repr=False)
    last_modified: str


@attrs.frozen
class TablesReceived:
    """One decoded state table, in arrival order (tables sent before the enable reply too)."""

    miniserver: str
    table: TableEvent = attrs.field(repr=False)
    #: The table's bytes, counted in ``budget`` until the owner has applied it (``release``).
    size: int = 0
    budget: TableBudget | None = attrs.field(default=None, eq=False, repr=False)

    def applied(self) -> None:
        if self.budget is not None:
            self.budget.release(self.size)


@attrs.frozen
class TokenUpdated:
    """The session holds a token valid until ``valid_until_unix`` (seconds since 1970, UTC)."""

    miniserver: str
    valid_until_unix: float


@attrs.frozen
class SessionLost:
    """A session ended (or never got going): count a reconnect with ``reason``.

    ``auth_failure`` also counts ``loxone_exporter_auth_failures_total``; ``protocol_error``
    counts ``loxone_exporter_protocol_errors_total``.
    """

    miniserver: str
    reason: ReconnectReason
    detail: str
    auth_failure: bool = False
    protocol_error: bool = False


@attrs.frozen
class ConnectionRemoved:
    """The Miniserver is no longer configured: drop everything it had."""

    miniserver: str


Message = (
    StatusChanged
    | MiniserverIdentified
    | StructureReady
    | TablesReceived
    | TokenUpdated
    | SessionLost
    | ConnectionRemoved
)
