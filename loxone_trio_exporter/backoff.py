"""How long to wait before reconnecting to a Miniserver: jittered exponential backoff.

"Equal jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"): the ceiling doubles
with every failed attempt, from ``2 * base`` up to ``cap``, and the delay is drawn from the upper
half of it::

    ceiling(attempt) = min(cap, 2 * base * 2**attempt)
    delay            = ceiling / 2 + random_fraction * ceiling / 2      in [ceiling/2, ceiling]

With the defaults the first delay is 1-2 s and the delays grow to 15-30 s. Full jitter (drawing
from ``[0, ceiling)``) spreads retries further but may retry at once, and hammering a Miniserver
that refuses our login gets the user blocked (close code 4003, protocol doc §4.5); equal jitter
always waits at least half the ceiling. One exporter talks to each Miniserver, so there is no
crowd of clients to spread out.

Pure: the random fraction is an argument, so a test (or a seeded generator) decides it.
"""

from __future__ import annotations

import math

DEFAULT_BASE_SECONDS = 1.0
#: A Miniserver that comes back is tried again within half a minute, so it streams again within
#: a minute (the specification's contract).
DEFAULT_CAP_SECONDS = 30.0
#: A session that streamed at least this long counts as a success: the next failure starts over.
STABLE_SESSION_SECONDS = 60.0
# 2.0**1000 is still finite; beyond it every ceiling is the cap anyway.
_MAX_EXPONENT = 1000


def reconnect_delay(
    attempt: int,
    *,
    random_fraction: float,
    base: float = DEFAULT_BASE_SECONDS,
    cap: float = DEFAULT_CAP_SECONDS,
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 for the first after a failure).

    ``random_fraction`` in ``[0, 1)``, e.g. ``random.random()``. The result lies in
    ``[ceiling / 2, ceiling]`` with ``ceiling = min(cap, 2 * base * 2**attempt)`` (it reaches
    ``ceiling`` only by rounding, for a fraction within 2**-52 of 1).
    """
    if attempt < 0:
        raise ValueError(f"attempt must not be negative, got {attempt}")
    if not 0.0 <= random_fraction < 1.0:
        raise ValueError(f"random_fraction must be in [0, 1), got {random_fraction}")
    if not (math.isfinite(base) and base > 0):
        raise ValueError(f"base must be a positive number of seconds, got {base}")
    if not (math.isfinite(cap) and cap >= base):
        raise ValueError(f"cap must be a number of seconds >= base, got {cap}")
    ceiling = delay_ceiling(attempt, base=base, cap=cap)
    half = ceiling / 2
    return half + random_fraction * half


def delay_ceiling(
    attempt: int, *, base: float = DEFAULT_BASE_SECONDS, cap: float = DEFAULT_CAP_SECONDS
) -> float:
    """The upper bound of ``reconnect_delay`` for ``attempt``; never decreasing."""
    # A float product that overflows is inf, which min() turns into the cap.
    return min(cap, 2.0 * base * 2.0 ** min(attempt, _MAX_EXPONENT))


class Backoff:
    """The reconnect attempts of one Miniserver connection (mutable; owned by its task)."""

    def __init__(
        self, *, base: float = DEFAULT_BASE_SECONDS, cap: float = DEFAULT_CAP_SECONDS
    ) -> None:
        reconnect_delay(0, random_fraction=0.0, base=base, cap=cap)  # validate
        self.base = base
        self.cap = cap
        self._attempt = 0

    def __repr__(self) -> str:
        return f"<Backoff attempt={self._attempt} base={self.base} cap={self.cap}>"

    @property
    def attempt(self) -> int:
        """How many delays were handed out since the last reset."""
        return self._attempt

    def next_delay(self, random_fraction: float) -> float:
        """The delay before the next reconnect; counts an attempt."""
        delay = reconnect_delay(
            self._attempt, random_fraction=random_fraction, base=self.base, cap=self.cap
        )
        self._attempt += 1
        return delay

    def reset(self) -> None:
        """Start over from the shortest delay (after a session that worked)."""
        self._attempt = 0

    def session_ended(self, streamed_seconds: float) -> None:
        """Reset if the session that just ended streamed at least ``STABLE_SESSION_SECONDS``."""
        if streamed_seconds >= STABLE_SESSION_SECONDS:
            self.reset()
