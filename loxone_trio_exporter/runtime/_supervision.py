"""The failure boundary around each Miniserver: a defect of ours ends one session, not the process.

A connection task and the state owner both run code that reads what a Miniserver sent. Whatever
that code raises besides the endings it knows (``SessionEnded``) and cancellation is a defect,
ours or the protocol layer's; it must cost that one Miniserver a session and nothing more. This
module says how such an error is logged: with its traceback the first time it is seen for a
Miniserver (so it can be reported), in one line each time after (so a defect hit on every
reconnect cannot flood the log).
"""

from __future__ import annotations

import logging
import traceback

#: Distinct errors remembered per Miniserver for the traceback-once rule; beyond this many, each
#: new one is logged with its traceback again (the memory stays bounded either way).
MAX_REMEMBERED_ERRORS = 32


class InternalErrorLog:
    """Logs unexpected exceptions of one Miniserver: the first of each kind with a traceback."""

    def __init__(self, logger: logging.Logger, miniserver: str) -> None:
        self._log = logger
        self._miniserver = miniserver
        self._seen: set[tuple[str, str, int]] = set()

    def report(self, exc: BaseException, where: str, consequence: str) -> str:
        """Log ``exc`` (raised while doing ``where``) and return a short detail for metrics and
        pages: the exception's type only, since its text may quote what the Miniserver sent."""
        detail = f"internal error in {where}: {type(exc).__name__}"
        signature = _signature(exc)
        if signature in self._seen:
            self._log.error(
                "miniserver %s: %s (seen before, traceback logged then); %s",
                self._miniserver,
                detail,
                consequence,
            )
            return detail
        if len(self._seen) >= MAX_REMEMBERED_ERRORS:
            self._seen.clear()
        self._seen.add(signature)
        self._log.error(
            "miniserver %s: %s; %s. This is a defect of the exporter: please report it with "
            "this traceback",
            self._miniserver,
            detail,
            consequence,
            exc_info=exc,
        )
        return detail


def _signature(exc: BaseException) -> tuple[str, str, int]:
    """The exception type and the place it was raised: the same defect hit again matches."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return (type(exc).__qualname__, "", 0)
    last = frames[-1]
    return (type(exc).__qualname__, last.filename, last.lineno or 0)
