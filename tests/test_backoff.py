"""Reconnect backoff: a pure function of the attempt and a random fraction, and its counter."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.backoff import (
    DEFAULT_CAP_SECONDS,
    STABLE_SESSION_SECONDS,
    Backoff,
    delay_ceiling,
    reconnect_delay,
)

attempts = st.integers(min_value=0, max_value=10_000)
fractions = st.floats(min_value=0.0, max_value=1.0, exclude_max=True)
bases = st.floats(min_value=1e-3, max_value=1e3)


# --- exact values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempt", "low", "high"),
    [(0, 1, 2), (1, 2, 4), (2, 4, 8), (3, 8, 16), (4, 15, 30), (5, 15, 30), (6, 15, 30)],
)
def test_default_delays_double_from_one_second_to_thirty(
    attempt: int, low: float, high: float
) -> None:
    assert reconnect_delay(attempt, random_fraction=0.0) == low
    assert reconnect_delay(attempt, random_fraction=0.5) == (low + high) / 2
    assert reconnect_delay(attempt, random_fraction=math.nextafter(1.0, 0.0)) <= high
    assert delay_ceiling(attempt) == high


def test_huge_attempts_stay_at_the_cap() -> None:
    assert reconnect_delay(10**12, random_fraction=0.0) == DEFAULT_CAP_SECONDS / 2
    assert delay_ceiling(10**12, base=1e300, cap=math.inf) == math.inf


def test_custom_base_and_cap() -> None:
    assert reconnect_delay(0, random_fraction=0.0, base=0.25, cap=10) == 0.25
    assert reconnect_delay(10, random_fraction=0.0, base=0.25, cap=10) == 5
    # A cap below twice the base caps the very first ceiling.
    assert reconnect_delay(0, random_fraction=0.0, base=1, cap=1) == 0.5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"attempt": -1}, "attempt"),
        ({"random_fraction": 1.0}, "random_fraction"),
        ({"random_fraction": -0.1}, "random_fraction"),
        ({"random_fraction": math.nan}, "random_fraction"),
        ({"base": 0.0}, "base"),
        ({"base": math.inf}, "base"),
        ({"base": math.nan}, "base"),
        ({"cap": 0.5}, "cap"),
        ({"cap": math.nan}, "cap"),
        ({"cap": math.inf}, "cap"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, float], message: str) -> None:
    arguments: dict[str, float] = {"attempt": 0, "random_fraction": 0.0, "base": 1.0, "cap": 60.0}
    arguments.update(kwargs)
    attempt = int(arguments.pop("attempt"))
    with pytest.raises(ValueError, match=message):
        reconnect_delay(attempt, **arguments)


# --- properties --------------------------------------------------------------------------------


@given(attempts, fractions)
def test_default_delay_is_between_one_second_and_the_cap(attempt: int, fraction: float) -> None:
    delay = reconnect_delay(attempt, random_fraction=fraction)
    assert 1.0 <= delay <= DEFAULT_CAP_SECONDS


@given(attempts, fractions, bases, st.floats(min_value=1.0, max_value=100.0))
def test_delay_lies_in_the_upper_half_of_the_ceiling(
    attempt: int, fraction: float, base: float, cap_factor: float
) -> None:
    cap = base * cap_factor
    ceiling = delay_ceiling(attempt, base=base, cap=cap)
    delay = reconnect_delay(attempt, random_fraction=fraction, base=base, cap=cap)
    assert ceiling / 2 <= delay <= ceiling
    assert ceiling <= cap
    assert delay >= min(base, cap / 2)


@given(attempts, bases, st.floats(min_value=1.0, max_value=100.0))
def test_ceiling_never_decreases_and_reaches_the_cap(
    attempt: int, base: float, cap_factor: float
) -> None:
    cap = base * cap_factor
    assert delay_ceiling(attempt, base=base, cap=cap) <= delay_ceiling(
        attempt + 1, base=base, cap=cap
    )
    assert delay_ceiling(attempt + 100, base=base, cap=cap) == cap


@given(attempts, fractions, fractions)
def test_delay_grows_with_the_random_fraction(attempt: int, a: float, b: float) -> None:
    low, high = sorted((a, b))
    assert reconnect_delay(attempt, random_fraction=low) <= reconnect_delay(
        attempt, random_fraction=high
    )


# --- the counter -------------------------------------------------------------------------------


def test_backoff_counts_attempts_and_resets() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(0.0) for _ in range(8)] == [1, 2, 4, 8, 15, 15, 15, 15]
    assert backoff.attempt == 8
    assert "attempt=8" in repr(backoff)
    backoff.reset()
    assert backoff.attempt == 0
    assert backoff.next_delay(0.5) == 1.5


def test_backoff_resets_only_after_a_stable_session() -> None:
    backoff = Backoff(base=2.0, cap=10.0)
    backoff.next_delay(0.0)
    backoff.next_delay(0.0)
    backoff.session_ended(STABLE_SESSION_SECONDS - 1)
    assert backoff.attempt == 2
    backoff.session_ended(STABLE_SESSION_SECONDS)
    assert backoff.attempt == 0
    assert backoff.next_delay(0.0) == 2.0


def test_backoff_validates_its_settings() -> None:
    with pytest.raises(ValueError, match="cap"):
        Backoff(base=10.0, cap=1.0)


@given(st.lists(fractions, max_size=30))
def test_backoff_matches_the_pure_function(sequence: list[float]) -> None:
    backoff = Backoff()
    for attempt, fraction in enumerate(sequence):
        assert backoff.next_delay(fraction) == reconnect_delay(attempt, random_fraction=fraction)
