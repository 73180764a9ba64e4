"""The Loxone Miniserver protocol, sans-IO.

Whole WebSocket messages go in, frozen events come out; commands come out as strings to send.
Nothing here touches a socket, a clock or a random source: keys, IVs, salts and times are passed
in, so every result is reproducible and testable against recorded vectors. Importing this package
must never import trio (a test checks it).
"""

from ..errors import LocalProtocolError, ProtocolError, RemoteProtocolError
from ._codes import CloseCode, MessageIdentifier, ResponseCode
from ._events import (
    DaytimerStatesReceived,
    Event,
    FileReceived,
    KeepaliveReceived,
    OutOfService,
    TextReply,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
)
from ._header import (
    ESTIMATED_FLAG,
    HEADER_SIZE,
    MessageHeader,
    build_header,
    encode_header,
    parse_header,
)
from ._reader import MessageReader, frame_binary_message, frame_text_message
from ._replies import (
    ApiKeyInfo,
    LLReply,
    encode_api_key_value,
    encode_ll_reply,
    normalize_command,
    parse_api_key_value,
    parse_ll_reply,
    try_parse_ll_reply,
    value_as_mapping,
)
from ._tables import (
    DaytimerEntry,
    DaytimerState,
    TextState,
    ValueState,
    WeatherEntry,
    WeatherState,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    encode_daytimer_states,
    encode_text_states,
    encode_value_states,
    encode_weather_states,
)
from ._uuid import NULL_UUID, RAW_UUID_SIZE, is_uuid_str, uuid_from_str, uuid_to_str

# --- authentication and command encryption (_auth.py, _crypto.py) ---

__all__ = [
    "ESTIMATED_FLAG",
    "HEADER_SIZE",
    "NULL_UUID",
    "RAW_UUID_SIZE",
    "ApiKeyInfo",
    "CloseCode",
    "DaytimerEntry",
    "DaytimerState",
    "DaytimerStatesReceived",
    "Event",
    "FileReceived",
    "KeepaliveReceived",
    "LLReply",
    "LocalProtocolError",
    "MessageHeader",
    "MessageIdentifier",
    "MessageReader",
    "OutOfService",
    "ProtocolError",
    "RemoteProtocolError",
    "ResponseCode",
    "TextReply",
    "TextState",
    "TextStatesReceived",
    "ValueState",
    "ValueStatesReceived",
    "WeatherEntry",
    "WeatherState",
    "WeatherStatesReceived",
    "build_header",
    "decode_daytimer_states",
    "decode_text_states",
    "decode_value_states",
    "decode_weather_states",
    "encode_api_key_value",
    "encode_daytimer_states",
    "encode_header",
    "encode_ll_reply",
    "encode_text_states",
    "encode_value_states",
    "encode_weather_states",
    "frame_binary_message",
    "frame_text_message",
    "is_uuid_str",
    "normalize_command",
    "parse_api_key_value",
    "parse_header",
    "parse_ll_reply",
    "try_parse_ll_reply",
    "uuid_from_str",
    "uuid_to_str",
    "value_as_mapping",
]
