from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    LOXONE_EPOCH_UNIX,
    HashAlgorithm,
    KeyInfo,
    RemoteProtocolError,
    SessionKey,
    TokenInfo,
    TokenPermission,
    aes_decrypt_b64,
    authwithtoken_command,
    checktoken_command,
    credential_hash,
    getjwt_command,
    getkey2_command,
    getkey_command,
    gettoken_command,
    hmac_hex,
    keyexchange_command,
    killtoken_command,
    loxone_time_to_unix,
    parse_getkey2_value,
    parse_token_value,
    password_hash,
    refreshjwt_command,
    token_hash,
    unix_to_loxone_time,
)

# --- hashes against recorded vectors --------------------------------------------------------------


def test_hmac_vectors(vectors):
    for vector in vectors["hmac"]:
        key, message = vector["key_hex"], vector["message"]
        assert hmac_hex(key, message, HashAlgorithm.SHA1) == vector["sha1"]
        assert hmac_hex(key, message, HashAlgorithm.SHA256) == vector["sha256"]


def test_credential_hash_vectors(vectors):
    for vector in vectors["token_hash"]:
        for algorithm in HashAlgorithm:
            result = credential_hash(
                vector["user"], vector["password"], vector["key"], vector["salt"], algorithm
            )
            assert result == vector[algorithm.value]


def test_password_hash_uses_the_salt_as_text_and_is_upper_case():
    salt = "31346632393637342D303239312D323837622D66666666613532346235633538306662"
    # Values from protocol doc §8.4.
    assert password_hash("pass", salt, HashAlgorithm.SHA1) == (
        "75C4C904ECA6C7BC82B9D65D4C7FA94C3775CBCF"
    )
    assert password_hash("pass", salt, HashAlgorithm.SHA256) == (
        "CB6EE76C8E5403AA303D353C4F2883700BEF489BDB8412D522C80507DF9394E4"
    )


@given(token=st.text(), key=st.binary(min_size=1, max_size=64))
def test_token_hash_is_the_hmac_of_the_token_alone(token, key):
    expected = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    assert token_hash(token, key.hex(), HashAlgorithm.SHA256) == expected
    # The key hex may arrive in either case.
    assert token_hash(token, key.hex().upper(), HashAlgorithm.SHA256) == expected


@pytest.mark.parametrize("key_hex", ["xyz", "abc", "", "4142\u00e9"])
def test_malformed_one_time_key_is_a_remote_error_that_does_not_show_the_key(key_hex):
    with pytest.raises(RemoteProtocolError, match="one-time key") as info:
        hmac_hex(key_hex, "message", HashAlgorithm.SHA1)
    if key_hex:
        assert key_hex not in str(info.value)


# --- hashAlg --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, HashAlgorithm.SHA1),
        ("SHA1", HashAlgorithm.SHA1),
        ("sha1", HashAlgorithm.SHA1),
        ("SHA256", HashAlgorithm.SHA256),
        ("Sha256", HashAlgorithm.SHA256),
    ],
)
def test_hash_algorithm_from_reply(raw, expected):
    assert HashAlgorithm.from_reply(raw) is expected


@pytest.mark.parametrize("raw", ["MD5", "", "SHA-256", 256, True, ["SHA1"]])
def test_unknown_hash_algorithm_is_a_remote_error(raw):
    with pytest.raises(RemoteProtocolError, match="hashAlg"):
        HashAlgorithm.from_reply(raw)


# --- getkey2 --------------------------------------------------------------------------------------


def test_parse_getkey2_value():
    info = parse_getkey2_value({"key": "4143", "salt": "3130", "hashAlg": "SHA256"})
    assert info == KeyInfo(key_hex="4143", salt="3130", hash_algorithm=HashAlgorithm.SHA256)
    assert "4143" not in repr(info)


def test_real_getkey2_reply_without_hash_alg_defaults_to_sha1(vectors):
    vector = vectors["aes"][2]
    session = SessionKey(key=bytes.fromhex(vector["key_hex"]), iv=bytes.fromhex(vector["iv_hex"]))
    reply = json.loads(aes_decrypt_b64(vector["base64"], session))
    info = parse_getkey2_value(reply["LL"]["value"])
    assert info.hash_algorithm is HashAlgorithm.SHA1
    assert info.key_hex == reply["LL"]["value"]["key"]
    assert info.salt == reply["LL"]["value"]["salt"]


@pytest.mark.parametrize(
    "value",
    [
        "4143",
        None,
        ["key", "salt"],
        {"salt": "3130"},
        {"key": "4143"},
        {"key": 4143, "salt": "3130"},
        {"key": "4143", "salt": ""},
        {"key": "zz", "salt": "3130"},
        {"key": "4143", "salt": "3130", "hashAlg": "MD5"},
    ],
)
def test_malformed_getkey2_value_is_a_remote_error(value):
    with pytest.raises(RemoteProtocolError):
        parse_getkey2_value(value)


# --- token replies --------------------------------------------------------------------------------


def test_parse_token_value_of_a_getjwt_reply():
    value = {
        "token": "8E2AA590E996B321C0E17C3FA9F7A3C17BD376CC",
        "key": "444432",
        "validUntil": 342151839,
        "tokenRights": 1666,
        "unsecurePass": False,
    }
    info = parse_token_value(value)
    assert info == TokenInfo(
        token="8E2AA590E996B321C0E17C3FA9F7A3C17BD376CC",
        key_hex="444432",
        valid_until=342151839,
        token_rights=1666,
        unsecure_password=False,
    )
    assert info.valid_until_unix == 342151839 + 1230768000


def test_parse_token_value_of_an_authwithtoken_reply_has_no_token():
    info = parse_token_value({"validUntil": "342151839", "tokenRights": 4, "unsecurePass": "true"})
    assert info.token is None
    assert info.key_hex is None
    assert info.valid_until == 342151839
    assert info.unsecure_password is True


@pytest.mark.parametrize(
    ("raw", "expected"), [(None, False), (0, False), (1, True), ("false", False)]
)
def test_unsecure_pass_spellings(raw, expected):
    value = {"validUntil": 1, "tokenRights": 2, "unsecurePass": raw}
    assert parse_token_value(value).unsecure_password is expected


@pytest.mark.parametrize(
    "value",
    [
        "token",
        {"tokenRights": 4},
        {"validUntil": 1},
        {"validUntil": True, "tokenRights": 4},
        {"validUntil": 1.5, "tokenRights": 4},
        {"validUntil": "-1", "tokenRights": 4},
        {"validUntil": 1, "tokenRights": 4, "token": 12},
        {"validUntil": 1, "tokenRights": 4, "token": ""},
        {"validUntil": 1, "tokenRights": 4, "key": 12},
        {"validUntil": 1, "tokenRights": 4, "unsecurePass": "maybe"},
    ],
)
def test_malformed_token_value_is_a_remote_error(value):
    with pytest.raises(RemoteProtocolError, match="token reply"):
        parse_token_value(value)


def test_token_info_repr_hides_token_and_key():
    info = TokenInfo(
        token="SECRET-TOKEN", key_hex="5345435245544b4559", valid_until=5, token_rights=4
    )
    text = repr(info)
    assert "SECRET-TOKEN" not in text
    assert "5345435245544b4559" not in text
    assert "valid_until=5" in text


# --- time -----------------------------------------------------------------------------------------


def test_loxone_epoch_is_2009_in_utc():
    assert datetime(2009, 1, 1, tzinfo=UTC).timestamp() == LOXONE_EPOCH_UNIX
    assert loxone_time_to_unix(0) == 1230768000
    assert unix_to_loxone_time(1230768000 + 43201) == 43201


@given(st.integers(min_value=0, max_value=2**40))
def test_loxone_time_round_trip(seconds):
    assert unix_to_loxone_time(loxone_time_to_unix(seconds)) == seconds


# --- commands -------------------------------------------------------------------------------------


def test_key_commands():
    assert getkey_command() == "jdev/sys/getkey"
    assert getkey2_command("admin") == "jdev/sys/getkey2/admin"
    assert getkey2_command("a/b c") == "jdev/sys/getkey2/a%2Fb%20c"


def test_token_request_commands():
    uuid = "edfc5f9a-df3f-4cad-9dddcdc42c732be2"
    assert getjwt_command("abc123", "admin", TokenPermission.APP, uuid, "Thomas iPhone X") == (
        f"jdev/sys/getjwt/abc123/admin/4/{uuid}/Thomas%20iPhone%20X"
    )
    assert gettoken_command("abc123", "admin", 2, uuid, "loxone/exporter") == (
        f"jdev/sys/gettoken/abc123/admin/2/{uuid}/loxone%2Fexporter"
    )


def test_token_hash_commands():
    assert authwithtoken_command("ab12", "admin") == "authwithtoken/ab12/admin"
    assert refreshjwt_command("ab12", "admin") == "jdev/sys/refreshjwt/ab12/admin"
    assert checktoken_command("ab12", "admin") == "jdev/sys/checktoken/ab12/admin"
    assert killtoken_command("ab12", "ad min") == "jdev/sys/killtoken/ab12/ad%20min"


def test_keyexchange_sends_the_base64_raw():
    assert keyexchange_command("ab+/cd==") == "jdev/sys/keyexchange/ab+/cd=="


@given(user=st.text(), info=st.text())
def test_user_and_info_stay_inside_their_path_segments(user, info):
    command = getjwt_command("00ff", user, TokenPermission.WEB, "uuid", info)
    segments = command.split("/")
    assert len(segments) == 8
    assert unquote(segments[4]) == user
    assert unquote(segments[7]) == info
    # Only unreserved characters and percent escapes are left.
    assert all(c.isascii() and (c.isalnum() or c in "-._~%") for c in segments[7])
