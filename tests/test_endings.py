"""How a closed WebSocket is described: the close codes that need words of their own."""

from __future__ import annotations

from trio_websocket import CloseReason

from loxone_trio_exporter.runtime._endings import closed
from loxone_trio_exporter.runtime._messages import ReconnectReason


def test_our_own_message_size_limit_is_not_blamed_on_the_miniserver() -> None:
    ended = closed(CloseReason(1009, "message too big"), update_retry=5.0)
    assert ended.reason is ReconnectReason.PROTOCOL_ERROR
    assert ended.protocol_error
    assert "16 MiB limit" in ended.detail
    assert "closed by the Miniserver" not in ended.detail


def test_other_codes_name_the_code_and_the_reason_text() -> None:
    ended = closed(CloseReason(1001, "going away"), update_retry=5.0)
    assert ended.reason is ReconnectReason.CLOSED
    assert ended.detail == "closed by the Miniserver with code 1001: going away"
