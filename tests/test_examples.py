from __future__ import annotations

import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_decode_messages_example_prints_the_decoded_events():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "decode_messages.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    lines = result.stdout.splitlines()
    assert lines[0].startswith("TextReply: ")
    assert lines[1].strip() == "ValueStatesReceived: 0f869a64-0200-0a9b-ffffd4c75dbaf53c = 21.5"
    assert "'hsv(42,76,77)'" in lines[2]
    assert lines[3] == "KeepaliveReceived: KeepaliveReceived()"
