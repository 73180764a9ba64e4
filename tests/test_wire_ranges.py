"""Every number (and bounded string) from the wire: just in range passes, just out is refused.

A refusal is a ``RemoteProtocolError`` (protocol) or ``StructureError`` (structure file) whose
message names the field and the limit; never another exception, never a secret in the text.
"""

from __future__ import annotations

import json
import math
import re
import ssl
import struct
import time

import pytest

from loxone_trio_exporter.errors import RemoteProtocolError, StructureError
from loxone_trio_exporter.protocol import (
    HashAlgorithm,
    MessageIdentifier,
    MessageReader,
    ValueStatesReceived,
    build_header,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    encode_ll_reply,
    encode_value_states,
    frame_text_message,
    load_public_key,
    loxone_time_to_unix,
    parse_api_key_value,
    parse_getkey2_value,
    parse_ll_reply,
    parse_structure_version,
    parse_token_value,
)
from loxone_trio_exporter.protocol._session import (
    ClientSession,
    SendCommand,
    SessionEvent,
    SessionFailed,
    StructureLoaded,
    TokenAcquired,
    token_refresh_delay,
)
from loxone_trio_exporter.runtime._transport import Transport, commands_in_clear
from loxone_trio_exporter.structure import structure_from_dict, unit_from_format

UINT32_MAX = 2**32 - 1
KEY_HEX = "41" * 40  # 80 hex characters, like a real one-time key
GOOD_TOKEN = {"token": "abc.def.ghi", "validUntil": 342151839, "tokenRights": 1666}


def short_id(value: object) -> str:
    """A readable test id, also for 10**400 and 5000-character strings."""
    if isinstance(value, int) and abs(value) > 10**20:
        return f"int-{value.bit_length()}-bits"
    text = ascii(value)
    return text if len(text) <= 24 else f"{text[:16]}...({len(text)})"


def refused(call: object, *args: object, match: str) -> str:
    """Run ``call(*args)``, expect a ``RemoteProtocolError`` matching ``match``; its message."""
    assert callable(call)
    with pytest.raises(RemoteProtocolError, match=match) as caught:
        call(*args)
    return str(caught.value)


# --- token replies: validUntil and tokenRights are uint32 --------------------------------------

UINT32_IN_RANGE = [0, 1, UINT32_MAX, "0", " 4294967295 "]
UINT32_OUT_OF_RANGE = [
    (-1, "between 0 and 4294967295, got -1"),
    (2**32, "between 0 and 4294967295, got 4294967296"),
    (10**400, "between 0 and 4294967295, got a number of 1329 bits"),
    ("4294967296", "between 0 and 4294967295"),
]
NOT_WHOLE_NUMBERS = [
    True,
    False,
    1.0,
    1.5,
    math.nan,
    math.inf,
    -math.inf,
    "²",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: isdigit() says yes, but it is not what Loxone writes
    "-1",
    "",
    "9" * 21,
    "9" * 5000,  # int() would refuse it with ValueError
    None,
    [1],
    {"n": 1},
]


@pytest.mark.parametrize("field", ["validUntil", "tokenRights"], ids=short_id)
@pytest.mark.parametrize("value", UINT32_IN_RANGE)
def test_token_numbers_in_the_uint32_range_pass(field: str, value: object) -> None:
    info = parse_token_value({**GOOD_TOKEN, field: value})
    number = info.valid_until if field == "validUntil" else info.token_rights
    assert number == int(str(value).strip())
    assert math.isfinite(float(info.valid_until_unix))


@pytest.mark.parametrize("field", ["validUntil", "tokenRights"], ids=short_id)
@pytest.mark.parametrize(("value", "message"), UINT32_OUT_OF_RANGE, ids=short_id)
def test_token_numbers_outside_the_uint32_range_are_refused(
    field: str, value: object, message: str
) -> None:
    text = refused(parse_token_value, {**GOOD_TOKEN, field: value}, match=re.escape(message))
    assert text.startswith(f"token reply: {field} must be")


@pytest.mark.parametrize("field", ["validUntil", "tokenRights"], ids=short_id)
@pytest.mark.parametrize("value", NOT_WHOLE_NUMBERS, ids=short_id)
def test_token_numbers_that_are_not_whole_numbers_are_refused(field: str, value: object) -> None:
    refused(parse_token_value, {**GOOD_TOKEN, field: value}, match=f"{field} must be a number")


def test_missing_valid_until_is_refused() -> None:
    value = {key: v for key, v in GOOD_TOKEN.items() if key != "validUntil"}
    refused(parse_token_value, value, match="validUntil must be a number .* got None")


# --- token replies: the token and its key ------------------------------------------------------


def test_token_of_the_longest_length_passes_and_one_more_is_refused() -> None:
    longest = "t" * 4096
    assert parse_token_value({**GOOD_TOKEN, "token": longest}).token == longest
    message = refused(
        parse_token_value,
        {**GOOD_TOKEN, "token": "s" * 4097},
        match="token must have at most 4096 characters, got 4097",
    )
    assert "sss" not in message


@pytest.mark.parametrize("token", ["\ud800", "tök", "a\nb", "a\x00b", ""], ids=short_id)
def test_tokens_that_would_not_hash_cleanly_are_refused_without_being_shown(token: str) -> None:
    message = refused(parse_token_value, {**GOOD_TOKEN, "token": token}, match="token reply: token")
    if token:
        assert token not in message


def test_token_reply_key_bounded() -> None:
    assert parse_token_value({**GOOD_TOKEN, "key": "4" * 1024}).key_hex == "4" * 1024
    refused(
        parse_token_value,
        {**GOOD_TOKEN, "key": "4" * 1025},
        match="key must have at most 1024 characters",
    )
    refused(parse_token_value, {**GOOD_TOKEN, "key": 44}, match="key must be a string, got int")


# --- getkey2: key and salt lengths, hash algorithm names ---------------------------------------


def test_getkey2_key_of_the_longest_length_passes_and_longer_is_refused() -> None:
    assert parse_getkey2_value({"key": "ab" * 512, "salt": "s"}).key_hex == "ab" * 512
    message = refused(
        parse_getkey2_value,
        {"key": "ab" * 513, "salt": "s"},
        match="one-time key has 1026 hex characters, at most 1024 expected",
    )
    assert "abab" not in message


def test_getkey2_salt_of_the_longest_length_passes_and_longer_is_refused() -> None:
    assert parse_getkey2_value({"key": KEY_HEX, "salt": "5" * 1024}).salt == "5" * 1024
    refused(
        parse_getkey2_value,
        {"key": KEY_HEX, "salt": "5" * 1025},
        match="salt must have at most 1024 characters, got 1025",
    )


@pytest.mark.parametrize("salt", ["\ud800", "säl", "a\tb"], ids=short_id)
def test_getkey2_salt_must_be_printable_ascii(salt: str) -> None:
    message = refused(
        parse_getkey2_value, {"key": KEY_HEX, "salt": salt}, match="salt must be printable ASCII"
    )
    assert salt not in message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, HashAlgorithm.SHA1), (" sha256 ", HashAlgorithm.SHA256), ("SHA1", HashAlgorithm.SHA1)],
    ids=short_id,
)
def test_known_hash_algorithm_names_pass(raw: object, expected: HashAlgorithm) -> None:
    assert HashAlgorithm.from_reply(raw) is expected


@pytest.mark.parametrize(
    "raw", ["SHA256" + " " * 11, "SHA512", "x" * 100_000, 256, math.nan, True], ids=short_id
)
def test_unknown_or_over_long_hash_algorithm_names_are_refused(raw: object) -> None:
    message = refused(HashAlgorithm.from_reply, raw, match="unknown hashAlg")
    assert len(message) < 80


# --- LL status codes ---------------------------------------------------------------------------


def code_of(raw: object) -> int:
    return parse_ll_reply(json.dumps({"LL": {"control": "x", "Code": raw}})).code


@pytest.mark.parametrize(
    ("raw", "code"), [(0, 0), (999, 999), ("200", 200), (200.0, 200)], ids=short_id
)
def test_status_codes_from_0_to_999_pass(raw: object, code: int) -> None:
    assert code_of(raw) == code


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (1000, "LL status code must be between 0 and 999, got 1000"),
        (-1, "LL status code must be between 0 and 999, got -1"),
        (1e300, "LL status code must be between 0 and 999, got a number of"),
        ("1000", "between 0 and 999"),
    ],
    ids=short_id,
)
def test_status_codes_out_of_range_are_refused(raw: object, message: str) -> None:
    refused(code_of, raw, match=re.escape(message))


@pytest.mark.parametrize(
    "literal",
    ["1" + "0" * 400, '"²"', '"' + "9" * 5000 + '"', "NaN", "Infinity", "2.5"],
    ids=short_id,
)
def test_status_codes_that_are_no_usable_number_are_refused(literal: str) -> None:
    text = '{"LL": {"control": "x", "Code": ' + literal + "}}"
    message = refused(parse_ll_reply, text, match="LL (reply has no usable Code|status code)")
    assert len(message) < 120


# --- jdev/cfg/apiKey ---------------------------------------------------------------------------

API_KEY = {"snr": "50:4F:94:10:B8:4A", "version": "14.5.12.7"}


@pytest.mark.parametrize("status", [0, 255, "1"], ids=short_id)
def test_https_status_in_range_passes(status: object) -> None:
    assert parse_api_key_value({**API_KEY, "httpsStatus": status}).https_status == int(status)


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (256, "httpsStatus must be between 0 and 255, got 256"),
        (-1, "httpsStatus must be between 0 and 255, got -1"),
        (10**400, "httpsStatus must be between 0 and 255, got a number of"),
        ("²", "httpsStatus must be a number"),
        (1.0, "httpsStatus must be a number"),
    ],
    ids=short_id,
)
def test_https_status_out_of_range_is_refused(status: object, message: str) -> None:
    refused(parse_api_key_value, {**API_KEY, "httpsStatus": status}, match=re.escape(message))


@pytest.mark.parametrize(
    "serial", ["50:4F:94:10:B8:4A", "504F94SAMPLE", "x", "A" * 32], ids=short_id
)
def test_serials_of_letters_digits_and_colons_pass(serial: str) -> None:
    assert parse_api_key_value({**API_KEY, "snr": serial}).serial == serial


@pytest.mark.parametrize("serial", ["", "A" * 33, "50.4F", "50 4F", "5ö", "a/b"], ids=short_id)
def test_other_serials_are_refused(serial: str) -> None:
    refused(parse_api_key_value, {**API_KEY, "snr": serial}, match="snr must be 1 to 32 letters")


def test_a_missing_serial_is_refused() -> None:
    refused(parse_api_key_value, {"version": "1.2"}, match="snr must be")


@pytest.mark.parametrize(
    "version",
    ["", "9", "14.5.12.7", "1.2.3.4.5.6.7.8", "999999999.0", "\u0663.\u0661"],
    ids=short_id,
)
def test_dotted_decimal_versions_pass(version: str) -> None:
    assert parse_api_key_value({**API_KEY, "version": version}).version == version


@pytest.mark.parametrize(
    "version",
    ["1.2.3.4.5.6.7.8.9", "1000000000.0", "²", "1..2", "1.", "v14", "14.5 beta", "1" * 5000],
    ids=short_id,
)
def test_other_versions_are_refused(version: str) -> None:
    message = refused(
        parse_api_key_value, {**API_KEY, "version": version}, match="version must be numbers"
    )
    assert len(message) < 120


# --- LoxAPPversion3 ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["2021-01-20 21:15:12", " v1\n", "", "x" * 64], ids=short_id)
def test_structure_versions_up_to_64_printable_characters_pass(value: str) -> None:
    assert parse_structure_version(value) == value.strip()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("x" * 65, "at most 64 characters, got 65"),
        ("2021-01-20\n21:15:12", "must be printable text"),
        ("\ud800", "must be printable text"),
        (20210120, "LL.value is not a string"),
        (None, "LL.value is not a string"),
    ],
    ids=short_id,
)
def test_other_structure_versions_are_refused(value: object, message: str) -> None:
    refused(parse_structure_version, value, match=message)


# --- through the session: a refused number ends the session as SessionFailed ----------------


class TlsScript:
    """A client session over TLS (no key exchange), answered by hand."""

    def __init__(self, **options: object) -> None:
        self.client = ClientSession(
            "user",
            "secret password",
            client_uuid="c",
            tls=True,
            **options,  # type: ignore[arg-type]
        )
        self.last = self.client.start()[0]

    def answer(self, value: object, code: int = 200) -> list[SessionEvent]:
        text = encode_ll_reply(self.last, value, code)
        events: list[SessionEvent] = []
        for message in frame_text_message(MessageIdentifier.TEXT, text):
            events.extend(self.client.receive(message))
        for event in events:
            if isinstance(event, SendCommand):
                self.last = event.text
        return events


@pytest.mark.parametrize(
    ("valid_until", "outcome"),
    [(UINT32_MAX, TokenAcquired), (UINT32_MAX + 1, SessionFailed), (10**400, SessionFailed)],
    ids=short_id,
)
def test_valid_until_through_the_session(valid_until: int, outcome: type) -> None:
    script = TlsScript()
    script.answer({"key": KEY_HEX, "salt": "5a5a"})
    events = script.answer({"token": "jwt", "validUntil": valid_until, "tokenRights": 4})
    assert isinstance(events[0], outcome), events
    if isinstance(events[0], TokenAcquired):
        assert math.isfinite(float(events[0].token.valid_until_unix))
    else:
        assert "validUntil must be between 0 and 4294967295" in events[0].reason
        assert "secret password" not in events[0].reason


def test_a_status_code_that_is_no_number_ends_the_session_not_the_caller() -> None:
    script = TlsScript()
    events = [
        event
        for message in frame_text_message(
            MessageIdentifier.TEXT, '{"LL": {"control": "x", "Code": "²"}}'
        )
        for event in script.client.receive(message)
    ]
    # Not an LL reply the session can use: reported as unexpected, the session goes on.
    assert not any(isinstance(event, SessionFailed) for event in events)


def test_an_over_long_structure_version_ends_the_session() -> None:
    script = TlsScript()
    script.answer({"key": KEY_HEX, "salt": "5a5a"})
    script.answer({"token": "jwt", "validUntil": 1, "tokenRights": 4})
    (failed,) = script.answer("2" * 65)
    assert isinstance(failed, SessionFailed)
    assert "at most 64 characters" in failed.reason


def test_a_64_character_structure_version_is_used() -> None:
    script = TlsScript()
    script.answer({"key": KEY_HEX, "salt": "5a5a"})
    script.answer({"token": "jwt", "validUntil": 1, "tokenRights": 4})
    script.answer("2" * 64)
    events = [
        event
        for message in frame_text_message(MessageIdentifier.FILE, "{}")
        for event in script.client.receive(message)
    ]
    assert isinstance(events[0], StructureLoaded)
    assert events[0].last_modified == "2" * 64


# --- the structure file ------------------------------------------------------------------------


def test_last_modified_up_to_64_characters_passes() -> None:
    assert structure_from_dict({"lastModified": "x" * 64}).last_modified == "x" * 64


def test_last_modified_over_64_characters_is_refused() -> None:
    with pytest.raises(StructureError, match=r"lastModified: .* got 65 characters"):
        structure_from_dict({"lastModified": "x" * 65})


@pytest.mark.parametrize("field", ["miniserverType", "tempUnit"], ids=short_id)
@pytest.mark.parametrize(
    ("value", "read"), [(0, 0), (255, 255), (256, None), (-1, None)], ids=short_id
)
def test_ms_info_numbers_out_of_range_read_as_absent(field: str, value: int, read: object) -> None:
    info = structure_from_dict({"msInfo": {field: value}}).ms_info
    assert (info.miniserver_type if field == "miniserverType" else info.temp_unit) == read


@pytest.mark.parametrize(
    ("value", "read"),
    [(2**31 - 1, 2**31 - 1), (-(2**31), -(2**31)), (2**31, None), (10**400, None)],
    ids=short_id,
)
def test_room_types_outside_int32_read_as_absent(value: int, read: object) -> None:
    rooms = structure_from_dict({"rooms": {"r": {"name": "R", "type": value}}}).rooms
    assert rooms["r"].type == read


# --- tables: counts and lengths used for sizes -------------------------------------------------

UUID = bytes(range(16))


def daytimer_record(count: int, entries: int) -> bytes:
    fixed = struct.pack("<16sdi", UUID, 0.0, count)
    return fixed + struct.pack("<iiiid", 1, 420, 1080, 0, 1.5) * entries


def weather_record(count: int, entries: int) -> bytes:
    fixed = struct.pack("<16sIi", UUID, UINT32_MAX, count)
    return fixed + struct.pack("<5i6d", *range(5), *[20.5] * 6) * entries


@pytest.mark.parametrize(
    ("decode", "record", "table"),
    [
        (decode_daytimer_states, daytimer_record, "daytimer"),
        (decode_weather_states, weather_record, "weather"),
    ],
    ids=short_id,
)
def test_entry_counts_must_fit_the_table(decode: object, record: object, table: str) -> None:
    assert callable(decode)
    assert callable(record)
    (state,) = decode(record(3, 3))
    assert len(state.entries) == 3
    refused(decode, record(4, 3), match=f"{table} record declares 4 entries")
    refused(decode, record(-1, 0), match=f"{table} record declares -1 entries")
    refused(decode, record(2**31 - 1, 1), match=f"{table} record declares 2147483647 entries")


def test_weather_last_update_is_a_uint32() -> None:
    (state,) = decode_weather_states(weather_record(0, 0))
    assert state.last_update == UINT32_MAX


def test_text_length_must_fit_the_table() -> None:
    record = struct.pack("<16s16sI", UUID, UUID, 4) + b"abcd"
    assert decode_text_states(record)[0].text == "abcd"
    too_long = struct.pack("<16s16sI", UUID, UUID, UINT32_MAX) + b"abcd"
    refused(decode_text_states, too_long, match="declares 4294967295 bytes of text, only 4 follow")


def test_value_table_keeps_nan_and_infinities_as_sent() -> None:
    payload = encode_value_states([(UUID, math.nan), (UUID, math.inf), (UUID, -math.inf)])
    values = [value for _uuid, value in decode_value_states(payload)]
    assert math.isnan(values[0])
    assert values[1:] == [math.inf, -math.inf]


def test_header_length_is_checked_against_the_payload_not_trusted() -> None:
    reader = MessageReader()
    assert reader.receive(build_header(MessageIdentifier.VALUE_STATES, UINT32_MAX)) is None
    refused(reader.receive, bytes(24), match="payload of 24 bytes, header announced 4294967295")
    reader = MessageReader()
    assert reader.receive(build_header(MessageIdentifier.VALUE_STATES, 24)) is None
    assert isinstance(reader.receive(bytes(24)), ValueStatesReceived)


# --- hostile text sizes: refused or read in linear time ------------------------------------------
# The time limits are 100 times what the linear code takes on a slow machine and a tiny fraction
# of what the former quadratic patterns took (minutes to hours): guards, not benchmarks.

LINEAR_TIME_LIMIT_SECONDS = 2.0


def test_public_key_text_longer_than_256_kib_is_refused() -> None:
    longest = "x" * (256 * 1024)
    refused(load_public_key, longest, match="no -----BEGIN")
    refused(load_public_key, longest + "x", match="262145 characters, at most 262144 expected")


def test_public_key_full_of_begin_markers_is_refused_in_linear_time() -> None:
    text = "-----BEGIN A-----x" * (256 * 1024 // 18)
    started = time.perf_counter()
    refused(load_public_key, text, match="no -----BEGIN")
    assert time.perf_counter() - started < LINEAR_TIME_LIMIT_SECONDS


def test_format_string_of_many_zeros_is_read_in_linear_time() -> None:
    # A 0 is a flag or (not first) part of a width, never both: no quadratic backtracking.
    assert unit_from_format("%08.2f °C") == "°C"
    assert unit_from_format("%00.2f%%") == "%"
    started = time.perf_counter()
    assert unit_from_format("%" + "0" * 1_000_000 + "!") == ""
    assert time.perf_counter() - started < LINEAR_TIME_LIMIT_SECONDS


# --- token times in the past ---------------------------------------------------------------------


def test_an_expired_valid_until_refreshes_at_once_unless_a_floor_is_asked() -> None:
    # validUntil = 0 is in range (2009-01-01): by default the refresh is due at once; a caller
    # that refreshes after every refresh passes a floor, so it cannot be driven into a loop.
    now = 1_800_000_000.0
    expired = float(loxone_time_to_unix(0))
    assert token_refresh_delay(expired, now) == 0.0
    assert token_refresh_delay(expired, now, min_delay_seconds=60.0) == 60.0
    assert token_refresh_delay(now + 1000, now, min_delay_seconds=60.0) == 500.0


@pytest.mark.parametrize(
    ("firmware", "in_clear"),
    [
        ("11.2", True),
        ("14.5.12.7", True),
        ("11.1.9", False),
        ("²", False),
        ("11.²", False),
        ("", False),
    ],
    ids=short_id,
)
def test_clear_commands_over_tls_read_only_decimal_versions(firmware: str, in_clear: bool) -> None:
    # Whatever reaches the version comparison, it compares or says no; it never raises.
    secure = Transport("192.168.1.77", 443, ssl.create_default_context(), "x.example")
    assert commands_in_clear(secure, firmware) is in_clear
    assert commands_in_clear(Transport("192.168.1.77", 80), firmware) is False
