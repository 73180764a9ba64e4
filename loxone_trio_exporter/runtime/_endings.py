"""Why a session ended, and how long to wait before the next try (protocol doc §4.5).

Most endings take the ordinary jittered backoff. Some must not be retried soon, or the Miniserver
blocks this address (close code 4003) or the user: those carry their own wait.

| ending | wait |
|---|---|
| 4003 blocked | the seconds in the reason text "(NN)", else 5 minutes |
| 4006 user disabled, Loxone code 423 | 10 minutes, logged as an error each time |
| 4007 firmware update | 5 s, then the apiKey probe waits while it answers 503 |
| 4008 no event slots | 5 minutes |
| user or password refused | a backoff of its own, doubling up to 10 minutes |
| booting (503) | 5 s between probes |
| a firmware without a known login | 10 minutes, logged as an error each time |
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from wsproto.frame_protocol import CloseReason

from ..errors import LoxoneExporterError
from ..protocol import CloseCode, ResponseCode, SessionFailed
from ._messages import ReconnectReason

BLOCKED_DEFAULT_SECONDS = 300.0
USER_DISABLED_SECONDS = 600.0
NO_EVENT_SLOTS_SECONDS = 300.0
AUTH_FAILURE_CAP_SECONDS = 600.0
#: A firmware is not updated every minute; asking every ten notices an update soon enough.
UNSUPPORTED_FIRMWARE_SECONDS = 600.0
_SECONDS_IN_REASON = re.compile(r"\((\d{1,6})\)")


class SessionEnded(LoxoneExporterError):
    """Why one session ended, carried from where it is noticed to the reconnect loop: every
    way a session ends is one, with the ``reason`` it is counted under."""

    def __init__(
        self,
        reason: ReconnectReason,
        detail: str,
        *,
        auth_failure: bool = False,
        protocol_error: bool = False,
        retry_after: float | None = None,
        forget_token: bool = False,
        level: int = logging.WARNING,
    ) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.auth_failure = auth_failure
        self.protocol_error = protocol_error
        self.retry_after = retry_after  # a fixed wait instead of the backoff
        self.forget_token = forget_token  # the stored token is no good any more
        self.level = level


def closed(code: int, reason: str, *, ours: bool = False, update_retry: float) -> SessionEnded:
    """The WebSocket closed: by the Miniserver (its close code), broken (1006), or by us
    (``ours``) for a fault in what the Miniserver sent."""
    if code == CloseReason.ABNORMAL_CLOSURE:
        return SessionEnded(ReconnectReason.CONNECTION_LOST, "connection lost (no close frame)")
    text = f": {reason}" if reason else ""
    if ours:
        return _closed_by_us(code, text)
    if code == CloseCode.BLOCKED:
        match = _SECONDS_IN_REASON.search(reason)
        seconds = float(match.group(1)) if match else BLOCKED_DEFAULT_SECONDS
        return SessionEnded(
            ReconnectReason.BLOCKED,
            f"blocked by the Miniserver after too many failed logins (close 4003{text}); "
            "check username and password",
            retry_after=seconds,
            level=logging.ERROR,
        )
    if code == CloseCode.UPDATE_IN_PROGRESS:
        return SessionEnded(
            ReconnectReason.UPDATING,
            "firmware update in progress (close 4007); waiting until it answers again",
            retry_after=update_retry,
            level=logging.INFO,
        )
    ending = _FIXED_CLOSE_ENDINGS.get(code)
    if ending is not None:
        return ending()
    return SessionEnded(ReconnectReason.CLOSED, f"closed by the Miniserver with code {code}{text}")


def _closed_by_us(code: int, text: str) -> SessionEnded:
    """We closed for a fault in the Miniserver's data; retrying will likely meet it again."""
    if code == CloseReason.MESSAGE_TOO_BIG:
        return SessionEnded(
            ReconnectReason.PROTOCOL_ERROR,
            "the Miniserver sent a message larger than the exporter's 16 MiB limit (a structure "
            "file this large is not supported); please report it with the file's size",
            protocol_error=True,
            level=logging.ERROR,
        )
    return SessionEnded(
        ReconnectReason.PROTOCOL_ERROR,
        f"the Miniserver sent WebSocket frames that break RFC 6455 (closed with {code}{text})",
        protocol_error=True,
    )


def _user_changed() -> SessionEnded:
    return SessionEnded(
        ReconnectReason.USER_CHANGED,
        "a user was changed on the Miniserver (close 4004/4005); logging in again",
        forget_token=True,
    )


def _no_event_slots() -> SessionEnded:
    return SessionEnded(
        ReconnectReason.NO_EVENT_SLOTS,
        "no free event slot: 31 clients already receive events (close 4008)",
        retry_after=NO_EVENT_SLOTS_SECONDS,
        level=logging.ERROR,
    )


def failed(event: SessionFailed) -> SessionEnded:
    """The session refused or broke the protocol."""
    if event.code == ResponseCode.USER_DISABLED:
        return _user_disabled(f"code {event.code}")
    if event.auth_failure:
        return SessionEnded(
            ReconnectReason.AUTH_FAILED,
            f"authentication failed (code {event.code}): check username and password",
            auth_failure=True,
            level=logging.ERROR,
        )
    if event.code == ResponseCode.AUTH_TIMEOUT:
        # We log in at once, so a 420 means our login went unanswered until its time was up.
        return SessionEnded(
            ReconnectReason.REFUSED,
            "the Miniserver closed the login as not done in time (code 420) although it was "
            "sent at once: it did not answer it in time; is it overloaded or stalled?",
        )
    if event.code is not None:
        return SessionEnded(ReconnectReason.REFUSED, f"{event.reason} (code {event.code})")
    return SessionEnded(
        ReconnectReason.PROTOCOL_ERROR, f"protocol error: {event.reason}", protocol_error=True
    )


def unsupported_firmware(detail: str) -> SessionEnded:
    """The Miniserver's firmware has no login this exporter knows (``login_era``)."""
    return SessionEnded(
        ReconnectReason.UNSUPPORTED_FIRMWARE,
        detail,
        retry_after=UNSUPPORTED_FIRMWARE_SECONDS,
        level=logging.ERROR,
    )


def _user_disabled(what: str) -> SessionEnded:
    return SessionEnded(
        ReconnectReason.USER_DISABLED,
        f"the user is disabled on the Miniserver ({what}); enable it in Loxone Config",
        auth_failure=True,
        retry_after=USER_DISABLED_SECONDS,
        level=logging.ERROR,
    )


_FIXED_CLOSE_ENDINGS: dict[int, Callable[[], SessionEnded]] = {
    CloseCode.SOME_USER_CHANGED: _user_changed,
    CloseCode.CURRENT_USER_CHANGED: _user_changed,
    CloseCode.USER_DISABLED: lambda: _user_disabled("close 4006"),
    CloseCode.NO_EVENT_SLOTS: _no_event_slots,
}
