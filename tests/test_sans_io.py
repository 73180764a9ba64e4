"""The protocol layer is sans-IO: importing it must not import trio or the web stack."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import loxone_trio_exporter.protocol

FORBIDDEN = ("trio", "trio_websocket", "quart", "quart_trio", "hypercorn", "asyncio")


def test_importing_protocol_and_structure_imports_no_io_framework():
    # A fresh interpreter, because this test process has imported trio already (pytest-trio).
    program = textwrap.dedent(
        f"""
        import sys
        import loxone_trio_exporter.protocol
        import loxone_trio_exporter.structure
        loaded = sorted(m for m in {FORBIDDEN!r} if m in sys.modules)
        print(",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


def test_protocol_sources_use_no_clock_or_os_randomness():
    package = Path(loxone_trio_exporter.protocol.__file__).parent
    for source in package.glob("*.py"):
        text = source.read_text("utf-8")
        for needle in (
            "os.urandom",
            "import time",
            "from time",
            "import random",
            "import secrets",
            "import socket",
            "datetime.now",
        ):
            assert needle not in text, f"{source.name} uses {needle}"


def test_the_runtime_imports_no_web_framework():
    """Design 2: the runtime (connections, state owner) stays free of Quart and Hypercorn."""
    program = textwrap.dedent(
        """
        import sys
        import loxone_trio_exporter.runtime._connection
        import loxone_trio_exporter.runtime._owner
        import loxone_trio_exporter.runtime._web_source
        import loxone_trio_exporter.exposition
        import loxone_trio_exporter.state
        web = ("quart", "quart_trio", "hypercorn")
        print(",".join(sorted(m for m in web if m in sys.modules)))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
