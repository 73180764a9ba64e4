"""How a closed WebSocket is described: the close codes that need words of their own."""

from __future__ import annotations

from loxone_trio_exporter.runtime._endings import closed
from loxone_trio_exporter.runtime._messages import ReconnectReason


def test_our_own_message_size_limit_is_not_blamed_on_the_miniserver() -> None:
    ended = closed(1009, "message too big", ours=True, update_retry=5.0)
    assert ended.reason is ReconnectReason.PROTOCOL_ERROR
    assert ended.protocol_error
    assert "16 MiB limit" in ended.detail
    assert "closed by the Miniserver" not in ended.detail


def test_frames_we_could_not_parse_are_a_protocol_error_of_the_miniserver() -> None:
    ended = closed(1002, "Reserved bits set", ours=True, update_retry=5.0)
    assert ended.reason is ReconnectReason.PROTOCOL_ERROR
    assert ended.protocol_error
    assert "break RFC 6455" in ended.detail
    assert "1002: Reserved bits set" in ended.detail


def test_a_broken_socket_is_a_lost_connection() -> None:
    ended = closed(1006, "connection lost", update_retry=5.0)
    assert ended.reason is ReconnectReason.CONNECTION_LOST
    assert not ended.protocol_error


def test_other_codes_name_the_code_and_the_reason_text() -> None:
    ended = closed(1001, "going away", update_retry=5.0)
    assert ended.reason is ReconnectReason.CLOSED
    assert ended.detail == "closed by the Miniserver with code 1001: going away"
