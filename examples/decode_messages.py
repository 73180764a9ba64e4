"""Decode Miniserver WebSocket messages with the sans-IO reader, no network needed.

Run: ``python examples/decode_messages.py``. It frames a few messages the way a Miniserver sends
them (a header, then the payload) and prints the events the reader makes of them. The same
``MessageReader`` is what the exporter feeds with every message it receives.
"""

from __future__ import annotations

from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    MessageReader,
    TextState,
    encode_text_states,
    encode_value_states,
    frame_binary_message,
    frame_text_message,
    uuid_from_str,
    uuid_to_str,
)

TEMPERATURE = uuid_from_str("0f869a64-0200-0a9b-ffffd4c75dbaf53c")
STATUS_TEXT = uuid_from_str("158f5d9a-00b0-54fe-ffff8626c2663bec")


def main() -> None:
    messages: list[bytes | str] = []
    messages += frame_text_message(
        MessageIdentifier.TEXT,
        '{"LL":{"control":"dev/sps/enablebinstatusupdate","value":"1","Code":"200"}}',
    )
    messages += frame_binary_message(
        MessageIdentifier.VALUE_STATES, encode_value_states([(TEMPERATURE, 21.5)])
    )
    messages += frame_binary_message(
        MessageIdentifier.TEXT_STATES, encode_text_states([TextState(STATUS_TEXT, "hsv(42,76,77)")])
    )
    messages += frame_binary_message(MessageIdentifier.KEEPALIVE, b"")

    reader = MessageReader()
    for message in messages:
        event = reader.receive(message)
        if event is None:
            continue  # a header; its payload is the next message
        print(type(event).__name__, end=": ")
        states = getattr(event, "states", None)
        if states is None:
            print(event)
            continue
        for state in states:
            if isinstance(state, tuple):
                print(f"{uuid_to_str(state[0])} = {state[1]}", end="  ")
            else:
                print(f"{uuid_to_str(state.uuid)} = {state.text!r}", end="  ")
        print()


if __name__ == "__main__":
    main()
