from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    ApiKeyInfo,
    RemoteProtocolError,
    ResponseCode,
    encode_api_key_value,
    encode_ll_reply,
    normalize_command,
    parse_api_key_value,
    parse_ll_reply,
    try_parse_ll_reply,
    value_as_mapping,
)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ('{"LL":{"control":"dev/sps/LoxAPPversion3","value":"x","Code":"200"}}', 200),
        ('{"LL":{"control":"jdev/sys/getkey2/showroom","code":200,"value":{}}}', 200),
        ('{"LL":{"control":"jdev/sys/getkey2/u","code":"401","value":{}}}', 401),
        ('{"LL":{"control":"x","Code":404,"value":""}}', 404),
        ('{"LL":{"control":"x","Code":" 503 ","value":""}}', 503),
        ('{"LL":{"control":"x","Code":477.0,"value":""}}', 477),
    ],
)
def test_code_key_and_type_variants(text, code):
    reply = parse_ll_reply(text)
    assert reply.code == code
    assert reply.response_code == ResponseCode(code)
    assert reply.ok is (code == 200)


def test_unknown_code_has_no_name_but_is_kept():
    reply = parse_ll_reply('{"LL":{"control":"x","Code":"299","value":""}}')
    assert reply.code == 299
    assert reply.response_code is None


def test_control_echo_in_dev_and_jdev_spelling_matches_the_command():
    command = "jdev/sps/enablebinstatusupdate"
    for echo in ("dev/sps/enablebinstatusupdate", "jdev/sps/enablebinstatusupdate"):
        reply = parse_ll_reply(encode_ll_reply(echo, "1"))
        assert reply.answers(command)
        assert reply.command == command
    assert not parse_ll_reply(encode_ll_reply("dev/sps/io/x", "1")).answers(command)
    assert normalize_command("keepalive") == "keepalive"


def test_extra_keys_are_kept():
    reply = parse_ll_reply('{"LL":{"control":"a/all","value":"1","Code":"200","output0":"x"}}')
    assert reply.extra == {"output0": "x"}
    assert encode_ll_reply("a/all", "1", extra={"output0": "x"}) == (
        '{"LL":{"control":"a/all","value":"1","Code":"200","output0":"x"}}'
    )


def test_real_401_reply_with_an_object_value():
    text = (
        '{"LL":{"control":"jdev/sys/gettoken/***/user/4/***/loxoneJava",'
        '"value":{"lastEdit":"2009-01-01 01:00:00","unix":1230768000},"code":"401"}}'
    )
    reply = parse_ll_reply(text)
    assert reply.response_code is ResponseCode.UNAUTHORIZED
    assert value_as_mapping(reply.value)["unix"] == 1230768000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", '"LL" object'),
        ('{"LL": "x"}', '"LL" object'),
        ('{"LL": {"control": 5, "Code": "200"}}', "control must be a string"),
        ('{"LL": {"control": "x"}}', "no usable Code"),
        ('{"LL": {"control": "x", "Code": "OK"}}', "no usable Code"),
        ('{"LL": {"control": "x", "Code": true}}', "must be a number"),
        ('{"LL": {"control": "x", "code": 2.5}}', "no usable Code"),
    ],
)
def test_malformed_replies(text, message):
    with pytest.raises(RemoteProtocolError, match=message):
        parse_ll_reply(text)
    assert try_parse_ll_reply(text) is None


def test_json_error_carries_its_offset():
    with pytest.raises(RemoteProtocolError) as caught:
        parse_ll_reply('{"LL": {"control": "x",, }}')
    assert caught.value.offset == 23


def test_bytes_that_are_not_utf8():
    with pytest.raises(RemoteProtocolError, match="not JSON"):
        parse_ll_reply(b"\xff\xfe")


# --- jdev/cfg/apiKey ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "{'snr':'50:4F:94:10:B8:4A', 'version':'9.1.10.30'}",
            ApiKeyInfo("50:4F:94:10:B8:4A", "9.1.10.30"),
        ),
        (
            "{'snr': 'EE:E0:00:D8:0B:0E', 'version':'10.3.11.25', 'hasEventSlots':true}",
            ApiKeyInfo("EE:E0:00:D8:0B:0E", "10.3.11.25", has_event_slots=True),
        ),
        (
            "{'snr': '50:4F:94:11:12:5F', 'version':'14.5.12.7', 'hasEventSlots':true, "
            "'isInTrust':false, 'local':true}",
            ApiKeyInfo("50:4F:94:11:12:5F", "14.5.12.7", has_event_slots=True, local=True),
        ),
        (
            {"snr": "50:4F:94:A0:00:01", "version": "15.0.1.2", "httpsStatus": 1},
            ApiKeyInfo("50:4F:94:A0:00:01", "15.0.1.2", https_status=1),
        ),
        (
            '{"snr":"x","version":"1","httpsStatus":"2","hasEventSlots":"false","local":0}',
            ApiKeyInfo("x", "1", https_status=2, has_event_slots=False, local=False),
        ),
    ],
)
def test_api_key_values_as_real_miniservers_send_them(value, expected):
    assert parse_api_key_value(value) == expected


def test_api_key_reply_read_whole():
    text = (
        '{"LL": {"control": "dev/cfg/apiKey", "value": "{\'snr\': \'50:4F:94:10:B8:4A\', '
        "'version':'13.2.4.1', 'httpsStatus':1}\", \"Code\": \"200\"}}"
    )
    reply = parse_ll_reply(text)
    assert reply.answers("jdev/cfg/apiKey")
    info = parse_api_key_value(reply.value)
    assert (info.serial, info.version, info.https_status) == ("50:4F:94:10:B8:4A", "13.2.4.1", 1)


def test_value_with_backslash_escaped_quotes():
    assert value_as_mapping('{\\"a\\": 1}') == {"a": 1}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2021-01-20 21:15:12", "not an object"),
        ("[1, 2]", "not an object"),
        (7, "not an object"),
        ("{'snr': 5, 'version': '1'}", "must be strings"),
        ("{'snr': 'a', 'version': '1', 'httpsStatus': 'yes'}", "httpsStatus must be a number"),
        ("{'snr': 'a', 'version': '1', 'local': 'maybe'}", "local must be true or false"),
    ],
)
def test_bad_api_key_values(value, message):
    with pytest.raises(RemoteProtocolError, match=message):
        parse_api_key_value(value)


@given(
    st.builds(
        ApiKeyInfo,
        serial=st.from_regex(r"[0-9A-F]{2}(:[0-9A-F]{2}){5}", fullmatch=True),
        version=st.from_regex(r"\d{1,2}(\.\d{1,2}){3}", fullmatch=True),
        https_status=st.none() | st.integers(0, 2),
        has_event_slots=st.none() | st.booleans(),
        local=st.none() | st.booleans(),
    )
)
def test_api_key_value_round_trip(info):
    encoded = encode_api_key_value(info)
    assert '"' not in encoded  # single quotes, as a real Miniserver writes it
    assert parse_api_key_value(encoded) == info


@given(
    control=st.text(max_size=30),
    value=st.one_of(st.text(max_size=20), st.dictionaries(st.text(max_size=5), st.integers())),
    code=st.integers(100, 999),
    code_key=st.sampled_from(["Code", "code"]),
    as_string=st.booleans(),
)
def test_ll_reply_round_trip(control, value, code, code_key, as_string):
    text = encode_ll_reply(control, value, code, code_key=code_key, code_as_string=as_string)
    reply = parse_ll_reply(text)
    assert (reply.control, reply.value, reply.code) == (control, value, code)
    assert json.loads(text)["LL"][code_key] == (str(code) if as_string else code)


@given(st.text(max_size=200))
def test_any_text_parses_or_raises_remote_protocol_error(text):
    try:
        reply = parse_ll_reply(text)
    except RemoteProtocolError:
        return
    assert isinstance(reply.code, int)
