"""Outside programs the tests run (promtool, prometheus): found on PATH, or the test skips.

Under ``LOXONE_TEST_STRICT=1`` (set by .ci/run, which installs them) a missing tool fails the
test instead, so CI cannot pass by skipping.
"""

from __future__ import annotations

import shutil

import pytest
from conftest import strict_mode

#: Where each tool comes from, for the skip message.
INSTALL_HINTS = {
    "promtool": "apt-get install -y prometheus",
    "prometheus": "apt-get install -y prometheus",
}


def require_tool(name: str) -> str:
    """The path of the program ``name``; skip (or fail in strict mode) when it is not on PATH."""
    path = shutil.which(name)
    if path is None:
        hint = INSTALL_HINTS.get(name)
        reason = f"{name} not on PATH" + (f" ({hint})" if hint else "")
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)
    return path
