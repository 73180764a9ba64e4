"""Shared test configuration: Hypothesis profiles and access to ``../shared/fixtures``.

Hypothesis profiles (choose with ``HYPOTHESIS_PROFILE``):
- ``default``: what CI runs; quick enough for every commit.
- ``fuzz``: at least 100,000 examples per property, no deadline; run it before a release or after
  touching the parsers (see README, "Fuzzing").
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("default", max_examples=200, deadline=None)
settings.register_profile(
    "fuzz",
    max_examples=100_000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# The fixtures live beside the repository (``../shared/fixtures``), never inside it.
SHARED_FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def strict_mode() -> bool:
    """Under ``LOXONE_TEST_STRICT=1`` (set by .ci/run) a missing prerequisite fails the test."""
    return os.environ.get("LOXONE_TEST_STRICT") == "1"


def require_shared_fixture(name: str) -> Path:
    """Path of a shared fixture file; skip (or fail in strict mode) when it is absent."""
    path = SHARED_FIXTURES / name
    if not path.is_file():
        reason = f"shared fixture {name} not found in {SHARED_FIXTURES}"
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)
    return path


@pytest.fixture
def shared_fixture() -> Callable[[str], Path]:
    """Returns the function that resolves a shared fixture by file name."""
    return require_shared_fixture


@pytest.fixture
def vectors() -> dict[str, Any]:
    """``../shared/fixtures/vectors.json``, parsed."""
    data: dict[str, Any] = json.loads(require_shared_fixture("vectors.json").read_text("utf-8"))
    return data


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A port that is bound but not listening: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]
