"""The simulator's server side of one WebSocket, driven by a client made of the protocol layer."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from urllib.parse import quote as percent
from urllib.parse import unquote

import attrs
import pytest
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given
from hypothesis import strategies as st
from sim_client import SimClient, check_send, deterministic_random, read_outputs

from loxone_trio_exporter.protocol import (
    NULL_UUID,
    FileReceived,
    HashAlgorithm,
    KeepaliveReceived,
    LLReply,
    MessageIdentifier,
    MessageReader,
    SessionKey,
    TextReply,
    TextState,
    ValueStatesReceived,
    aes_decrypt_b64,
    authwithtoken_command,
    checktoken_command,
    credential_hash,
    decrypt_control_echo,
    encode_text_states,
    encode_value_states,
    encrypt_command,
    encrypt_session_key,
    getjwt_command,
    gettoken_command,
    killtoken_command,
    parse_getkey2_value,
    parse_header,
    parse_ll_reply,
    parse_token_value,
    refreshjwt_command,
    token_hash,
    unix_to_loxone_time,
)
from loxone_trio_exporter.simulator._accounts import Accounts, User, parse_user_spec
from loxone_trio_exporter.simulator._encryption import CommandCrypto
from loxone_trio_exporter.simulator._session import (
    Close,
    Send,
    ServerSession,
    StartStreaming,
)

# 1024 bits: fast, and enough for the 97-byte session key payload.
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
PUBLIC_KEY = PRIVATE_KEY.public_key()
NOW = 1_700_000_000.0
SHA1_USER = User("alice", "correct horse battery", HashAlgorithm.SHA1)
SHA256_USER = User("bøb", "short", HashAlgorithm.SHA256)  # non-ASCII name, unsecure password
CLIENT_UUID = "098802e1-02b4-603c-ffffeee000d80cfd"
UUID_A = bytes(range(16))


@attrs.define
class FakeMiniserver:
    last_modified: str = "2024-05-01 12:00:00"
    document: dict[str, object] = attrs.field(
        factory=lambda: {"lastModified": "2024-05-01 12:00:00", "msInfo": {"msName": "Küche"}}
    )

    def structure_text(self) -> str:
        return json.dumps(self.document, ensure_ascii=False)

    def full_tables(self) -> list[tuple[MessageIdentifier, bytes]]:
        return [
            (MessageIdentifier.VALUE_STATES, encode_value_states([(UUID_A, 21.5)])),
            (
                MessageIdentifier.TEXT_STATES,
                encode_text_states([TextState(UUID_A, "Grüße", NULL_UUID)]),
            ),
            (MessageIdentifier.DAYTIMER_STATES, b""),
        ]


def make_accounts(**kwargs: object) -> Accounts:
    return Accounts(
        [SHA1_USER, SHA256_USER],
        random_bytes=deterministic_random("accounts"),
        **kwargs,  # type: ignore[arg-type]
    )


def connect(accounts: Accounts | None = None, **kwargs: object) -> SimClient:
    session = ServerSession(
        accounts or make_accounts(),
        FakeMiniserver(),
        PRIVATE_KEY,
        random_bytes=deterministic_random("session"),
        **kwargs,  # type: ignore[arg-type]
    )
    return SimClient(session, PUBLIC_KEY, now=NOW)


def login(client: SimClient, user: User = SHA1_USER, mode: str | None = "enc") -> LLReply:
    assert client.keyexchange().ok
    reply = client.getjwt(user.name, user.password, mode=mode)
    assert reply.ok, reply
    return reply


def last_text(client: SimClient) -> str:
    """The raw text of the last text reply the client received."""
    replies = [item for item in client.items if isinstance(item, TextReply)]
    return replies[-1].text


def raw_body(reply_text: str) -> dict[str, object]:
    body: dict[str, object] = json.loads(reply_text)["LL"]
    return body


# --- the whole flow ------------------------------------------------------------------------


@pytest.mark.parametrize("user", [SHA1_USER, SHA256_USER], ids=["SHA1", "SHA256"])
@pytest.mark.parametrize("estimated", [False, True], ids=["exact", "estimated"])
def test_full_login_and_streaming_flow(user: User, estimated: bool) -> None:
    client = connect(estimated_headers=estimated)

    key_reply = client.text_reply(client_keyexchange_command(client))
    body = raw_body(key_reply.text)
    assert body["Code"] == "200"  # a string (§9c item 3)
    assert str(body["control"]).startswith("dev/sys/keyexchange/")
    assert client.session_key is not None
    assert isinstance(body["value"], str)
    one_time_key = aes_decrypt_b64(body["value"], client.session_key)
    assert re.fullmatch("[0-9A-F]{80}", one_time_key)

    info = client.getkey2(user.name)
    assert info.hash_algorithm is user.hash_algorithm
    assert len(info.key_hex) == 80
    assert bytes.fromhex(info.key_hex).decode().isalnum()

    token_reply = client.getjwt(user.name, user.password)
    assert token_reply.ok
    assert token_reply.code == 200
    token = parse_token_value(token_reply.value)
    assert token.token
    assert token.token_rights != 0
    assert token.valid_until > unix_to_loxone_time(int(NOW))
    assert token.unsecure_password is (len(user.password) < 8)
    assert client.session.authenticated
    assert client.session.user == user
    assert client.session.token == token.token

    version = client.request("jdev/sps/LoxAPPversion3", mode="enc")
    assert version.ok
    assert version.value == "2024-05-01 12:00:00"

    outputs = client.session.receive("data/LoxAPP3.json", NOW)
    assert len(outputs) == 1
    assert isinstance(outputs[0], Send)
    send = outputs[0]
    check_send(send)
    assert isinstance(send.messages[0], bytes)
    first = parse_header(send.messages[0])
    assert first.identifier is MessageIdentifier.FILE
    assert first.estimated is estimated
    assert len(send.messages) == (3 if estimated else 2)
    assert isinstance(send.messages[-1], str)  # a text frame (§9c item 10)
    file_event = client.reader.receive(send.messages[0])
    for message in send.messages[1:]:
        file_event = client.reader.receive(message)
    assert isinstance(file_event, FileReceived)
    assert json.loads(file_event.content)["msInfo"]["msName"] == "Küche"

    items = client.send("jdev/sps/enablebinstatusupdate")
    assert isinstance(items[0], TextReply)
    assert items[0].reply is not None
    assert items[0].reply.ok
    assert items[0].reply.control == "dev/sps/enablebinstatusupdate"
    assert isinstance(items[1], ValueStatesReceived)
    assert items[1].states == ((UUID_A, 21.5),)
    assert isinstance(items[-1], StartStreaming)
    assert client.session.streaming

    assert client.send("keepalive") == [KeepaliveReceived()]
    assert client.session.receive("keepalive", NOW) == [Send((bytes.fromhex("0306000000000000"),))]


def client_keyexchange_command(client: SimClient) -> str:
    client.session_key = SessionKey(key=client.random(32), iv=client.random(16))
    return f"jdev/sys/keyexchange/{encrypt_session_key(PUBLIC_KEY, client.session_key)}"


def test_tables_before_ack_quirk() -> None:
    client = connect(tables_before_ack=True)
    login(client)
    items = client.send("jdev/sps/enablebinstatusupdate")
    assert isinstance(items[0], ValueStatesReceived)
    assert isinstance(items[-2], TextReply)
    assert isinstance(items[-1], StartStreaming)


def test_quirks_can_be_switched_on_a_live_session() -> None:
    client = connect()
    login(client)
    client.session.estimated_headers = True
    (send,) = client.session.receive("DATA/loxapp3.JSON", NOW)
    assert isinstance(send, Send)
    assert isinstance(send.messages[0], bytes)
    assert parse_header(send.messages[0]).estimated


def test_login_in_clear_over_tls_and_fenc_everywhere() -> None:
    client = connect(tls=True)
    assert client.getjwt(SHA256_USER.name, SHA256_USER.password, mode=None).ok
    client2 = connect()
    client2.keyexchange()
    reply = client2.getjwt(SHA1_USER.name, SHA1_USER.password, mode="fenc")
    assert reply.ok
    assert reply.control.startswith("jdev/sys/getjwt/")
    assert client2.request("jdev/sps/LoxAPPversion3", mode="fenc").value == "2024-05-01 12:00:00"


def test_getkey2_and_getkey_in_clear_on_plain_ws() -> None:
    client = connect()
    reply = client.request("jdev/sys/getkey2/alice")
    assert reply.ok
    assert reply.control == "dev/sys/getkey2/alice"
    assert raw_body(last_text(client))["code"] == 200
    key = client.request("jdev/sys/getkey")
    assert key.ok
    assert isinstance(key.value, str)
    assert len(key.value) == 80


# --- encryption details ----------------------------------------------------------------------


def test_enc_reply_echoes_the_encrypted_command_percent_decoded() -> None:
    client = connect()
    login(client)
    command = client.encrypt("jdev/sps/LoxAPPversion3")
    assert "%" in command or "/" in command[len("jdev/sys/enc/") :]
    reply = client.request(command)
    assert reply.control == "jdev/sys/enc/" + unquote(command[len("jdev/sys/enc/") :])
    assert client.session_key is not None
    assert decrypt_control_echo(reply.control, client.session_key) == "jdev/sps/LoxAPPversion3"


def test_cipher_with_unescaped_slash_and_nul_pkcs7_padding_is_accepted() -> None:
    client = connect()
    login(client)
    assert client.session_key is not None
    assert client.salt is not None
    plaintext = f"salt/{client.salt}/jdev/sps/LoxAPPversion3\0".encode()
    padder = padding.PKCS7(128).padder()
    padded = padder.update(plaintext) + padder.finalize()
    enc = Cipher(
        algorithms.AES(client.session_key.key), modes.CBC(client.session_key.iv)
    ).encryptor()
    cipher = base64.b64encode(enc.update(padded) + enc.finalize()).decode()
    reply = client.request(f"jdev/sys/enc/{cipher}")
    assert reply.ok
    assert reply.value == "2024-05-01 12:00:00"


def test_salt_rules() -> None:
    client = connect()
    login(client)
    first_salt = client.salt
    assert client.request(client.encrypt("jdev/sps/LoxAPPversion3")).ok  # same salt again
    assert client.request(client.encrypt("jdev/sps/LoxAPPversion3", rotate=True)).ok
    assert client.salt != first_salt
    assert client.session_key is not None
    assert first_salt is not None
    stale = encrypt_command("jdev/sps/LoxAPPversion3", client.session_key, first_salt)
    assert client.request(stale).code == 401
    wrong_current = encrypt_command(
        "jdev/sps/LoxAPPversion3", client.session_key, "beef", next_salt="cafe"
    )
    assert client.request(wrong_current).code == 401
    assert client.salt is not None
    to_used = encrypt_command(
        "jdev/sps/LoxAPPversion3", client.session_key, client.salt, next_salt=first_salt
    )
    assert client.request(to_used).code == 401
    fresh = encrypt_command("jdev/sps/LoxAPPversion3", client.session_key, "0123abcd")
    assert client.request(fresh).ok  # a never-used salt starts afresh


def test_next_salt_before_any_salt_is_refused() -> None:
    client = connect()
    client.keyexchange()
    assert client.session_key is not None
    command = encrypt_command("jdev/sys/getkey", client.session_key, "aa", next_salt="bb")
    assert client.request(command).code == 401


def test_encryption_failures() -> None:
    client = connect()
    assert client.request("jdev/sys/enc/AAAA").code == 401  # no keyexchange yet
    assert client.request("jdev/sys/keyexchange/bm90IHJzYQ==").code == 401
    assert client.request("jdev/sys/keyexchange/%%%").code == 401
    client.keyexchange()
    assert client.request("jdev/sys/fenc/not base64!").code == 401
    assert client.request("jdev/sys/enc/" + "A" * 24).code == 401  # not a multiple of 16
    assert client.request(client.encrypt("jdev/sys/keyexchange/AAAA")).code == 400
    assert client.session_key is not None
    assert client.salt is not None
    nested = encrypt_command("jdev/sys/enc/AAAA", client.session_key, client.salt)
    assert client.request(nested).code == 400


def test_failed_keyexchange_keeps_the_previous_session_key() -> None:
    client = connect()
    login(client)
    assert client.request("jdev/sys/keyexchange/AAAA").code == 401
    assert client.request("jdev/sps/LoxAPPversion3", mode="enc").ok


def test_structure_file_by_enc_but_not_by_fenc() -> None:
    client = connect()
    login(client)
    items = client.send(client.encrypt("data/LoxAPP3.json"))
    assert isinstance(items[0], FileReceived)
    assert client.request("data/LoxAPP3.json", mode="fenc").code == 400


# --- refusals ------------------------------------------------------------------------------


def test_wrong_password_is_401_with_last_edit() -> None:
    client = connect()
    client.keyexchange()
    reply = client.getjwt(SHA1_USER.name, "wrong")
    assert reply.code == 401
    assert reply.value == {"lastEdit": "2009-01-01 01:00:00", "unix": 1230768000}
    assert raw_body(last_text(client))["code"] == "401"
    assert not client.session.authenticated


@pytest.mark.parametrize(
    ("user", "wrong"),
    [(SHA1_USER, HashAlgorithm.SHA256), (SHA256_USER, HashAlgorithm.SHA1)],
)
def test_wrong_hash_algorithm_is_401(user: User, wrong: HashAlgorithm) -> None:
    client = connect()
    client.keyexchange()
    assert client.getjwt(user.name, user.password, algorithm=wrong).code == 401


def test_unencrypted_getjwt_over_plain_ws_is_400() -> None:
    client = connect()
    reply = client.getjwt(SHA1_USER.name, SHA1_USER.password, mode=None)
    assert reply.code == 400
    # The key was not used up by the refused request.
    assert client.one_time_key is not None
    info = client.session.receive("jdev/sys/getkey2/alice", NOW)
    assert info


def test_gettoken_in_clear_on_plain_ws_is_400_and_legacy_token_over_tls() -> None:
    client = connect()
    info = client.getkey2("alice", mode=None)
    hash_hex = credential_hash(
        "alice", SHA1_USER.password, info.key_hex, info.salt, HashAlgorithm.SHA1
    )
    assert client.request(gettoken_command(hash_hex, "alice", 4, CLIENT_UUID, "x")).code == 400
    tls = connect(tls=True)
    info = tls.getkey2("alice", mode=None)
    hash_hex = credential_hash(
        "alice", SHA1_USER.password, info.key_hex, info.salt, HashAlgorithm.SHA1
    )
    reply = tls.request(gettoken_command(hash_hex, "alice", 2, CLIENT_UUID, "x"))
    token = parse_token_value(reply.value)
    assert token.token is not None
    assert re.fullmatch("[0-9A-F]{40}", token.token)
    assert token.token_rights == 1666  # Web token, like the real reply (§4.2)
    assert token.valid_until == unix_to_loxone_time(int(NOW)) + 12 * 3600


def test_a_one_time_key_is_usable_once() -> None:
    client = connect()
    client.keyexchange()
    info = client.getkey2("alice")
    assert (
        client.request(getjwt_command("0" * 40, "alice", 4, CLIENT_UUID, "x"), mode="enc").code
        == 401
    )
    good = credential_hash("alice", SHA1_USER.password, info.key_hex, info.salt, HashAlgorithm.SHA1)
    command = getjwt_command(good, "alice", 4, CLIENT_UUID, "x")
    assert client.request(command, mode="enc").code == 401  # the key was used by the wrong hash
    info = client.getkey2("alice")
    good = credential_hash("alice", SHA1_USER.password, info.key_hex, info.salt, HashAlgorithm.SHA1)
    command = getjwt_command(good, "alice", 4, CLIENT_UUID, "x")
    assert client.request(command, mode="enc").ok
    assert client.request(command, mode="enc").code == 401  # replayed


def test_commands_before_authentication_are_400_and_unknown_after_is_404() -> None:
    client = connect()
    for command in ("jdev/sps/LoxAPPversion3", "data/LoxAPP3.json", "jdev/sps/io/x/on"):
        reply = client.request(command)
        assert reply.code == 400
    assert raw_body(last_text(client))["Code"] == "400"
    assert client.request(checktoken_command("00", "alice")).code == 400
    assert client.send("keepalive") == [KeepaliveReceived()]  # always answered
    login(client)
    reply = client.request("jdev/sps/io/x/on")
    assert reply.code == 404
    assert reply.control == "dev/sps/io/x/on"
    assert client.request("jdev/sps/io/x/on", mode="enc").code == 404


def test_malformed_auth_commands_are_400() -> None:
    client = connect(tls=True)
    assert client.request("jdev/sys/getkey2/").code == 400
    assert client.request("jdev/sys/getjwt/abc/alice/4").code == 400
    assert client.request(f"jdev/sys/getjwt/abc/alice/app/{CLIENT_UUID}/x").code == 400
    assert client.request(f"jdev/sys/getjwt/abc/alice/999999/{CLIENT_UUID}/x").code == 400
    assert client.request("authwithtoken/abc").code == 400
    login(client)
    assert client.request("jdev/sys/refreshjwt/abc").code == 400


def test_unknown_user_gets_a_stable_salt_and_then_401() -> None:
    client = connect()
    client.keyexchange()
    first = client.getkey2("mallory")
    second = client.getkey2("mallory")
    assert first.salt == second.salt
    assert first.key_hex != second.key_hex
    assert client.getjwt("mallory", "x").code == 401


def test_omit_hash_alg_means_sha1_for_everyone() -> None:
    accounts = make_accounts(omit_hash_alg=True)
    client = connect(accounts)
    client.keyexchange()
    reply = client.request("jdev/sys/getkey2/b%C3%B8b", mode="enc")
    assert isinstance(reply.value, dict)
    assert "hashAlg" not in reply.value
    assert client.getjwt(SHA256_USER.name, SHA256_USER.password).ok  # hashed with SHA1
    other = connect(accounts)
    other.keyexchange()
    refused = other.getjwt(SHA256_USER.name, SHA256_USER.password, algorithm=HashAlgorithm.SHA256)
    assert refused.code == 401


# --- tokens --------------------------------------------------------------------------------


def acquire_token(accounts: Accounts, user: User = SHA1_USER) -> str:
    client = connect(accounts)
    token = parse_token_value(login(client, user).value).token
    assert token is not None
    return token


def auth_with_token(
    client: SimClient, user: User, token: str, algorithm: HashAlgorithm | None = None
) -> LLReply:
    info = client.getkey2(user.name)
    hash_hex = token_hash(token, info.key_hex, algorithm or info.hash_algorithm)
    return client.request(authwithtoken_command(hash_hex, user.name), mode="enc")


def test_token_reuse_on_a_new_session() -> None:
    accounts = make_accounts()
    token = acquire_token(accounts)
    client = connect(accounts)
    client.keyexchange()
    reply = auth_with_token(client, SHA1_USER, token)
    assert reply.ok
    assert isinstance(reply.value, dict)
    assert set(reply.value) == {"validUntil", "tokenRights", "unsecurePass"}
    assert raw_body(last_text(client)) == {
        "control": reply.control,
        "value": reply.value,
        "code": "200",  # a string: loxwebsocket compares with "200"
    }
    assert client.session.authenticated
    assert client.session.token == token


def test_authwithtoken_with_the_keyexchange_key_and_sha256_for_a_sha1_user() -> None:
    # lxcommunicator: the key from keyexchange, SHA256 on firmware >= 10.4 (§9c item 7).
    accounts = make_accounts()
    token = acquire_token(accounts)
    client = connect(accounts)
    client.keyexchange()
    hash_hex = client.token_hash(token, HashAlgorithm.SHA256)
    assert client.request(authwithtoken_command(hash_hex, "alice"), mode="fenc").ok


def test_authwithtoken_in_clear_with_getkey_and_jdev_prefix() -> None:
    accounts = make_accounts()
    token = acquire_token(accounts)
    client = connect(accounts)
    key = client.request("jdev/sys/getkey").value
    assert isinstance(key, str)
    hash_hex = token_hash(token, key, HashAlgorithm.SHA1)
    assert client.request(f"jdev/sys/authwithtoken/{hash_hex}/alice").ok


def test_authwithtoken_refusals() -> None:
    accounts = make_accounts()
    token = acquire_token(accounts)
    client = connect(accounts)
    assert client.request(authwithtoken_command("ab" * 20, "alice")).code == 401  # no key yet
    client.keyexchange()
    assert auth_with_token(client, SHA1_USER, "not-a-token").code == 401
    assert auth_with_token(client, SHA256_USER, token).code == 401  # someone else's token
    assert auth_with_token(client, User("mallory", "x"), token).code == 401  # unknown user
    omit = make_accounts(omit_hash_alg=True)
    sha1_only = acquire_token(omit)
    other = connect(omit)
    other.keyexchange()
    assert auth_with_token(other, SHA1_USER, sha1_only, HashAlgorithm.SHA256).code == 401


def test_refreshjwt_gives_a_new_token_and_the_old_one_is_refused() -> None:
    accounts = make_accounts()
    client = connect(accounts)
    old = parse_token_value(login(client).value).token
    assert old is not None
    info = client.getkey2("alice")
    hash_hex = token_hash(old, info.key_hex, HashAlgorithm.SHA1)
    reply = client.request(refreshjwt_command(hash_hex, "alice"), mode="enc")
    new = parse_token_value(reply.value)
    assert reply.ok
    assert new.token
    assert new.token != old
    assert new.token_rights
    assert client.session.token == new.token
    assert raw_body(last_text(client))["code"] == "200"
    other = connect(accounts)
    other.keyexchange()
    assert auth_with_token(other, SHA1_USER, old).code == 401
    assert auth_with_token(other, SHA1_USER, new.token).ok
    # The key of the refresh reply works like a getkey result (legacy refreshtoken spelling).
    assert new.key_hex is not None
    hash_hex = token_hash(new.token, new.key_hex, HashAlgorithm.SHA1)
    assert client.request(f"jdev/sys/refreshtoken/{hash_hex}/alice", mode="enc").ok


def test_refresh_needs_a_key_and_a_valid_token() -> None:
    accounts = make_accounts()
    client = connect(accounts)
    token = parse_token_value(login(client).value).token
    assert token is not None
    client.one_time_key = None
    client.request("jdev/sys/getkey2/alice", mode="enc")
    client.request(f"jdev/sys/checktoken/{'00' * 20}/alice", mode="enc")  # uses the key
    assert client.request(refreshjwt_command("00" * 20, "alice"), mode="enc").code == 401
    accounts.expire_all()
    info = client.getkey2("alice")
    hash_hex = token_hash(token, info.key_hex, HashAlgorithm.SHA1)
    assert client.request(refreshjwt_command(hash_hex, "alice"), mode="enc").code == 477


def test_checktoken_and_expire_all() -> None:
    accounts = make_accounts()
    client = connect(accounts)
    token = parse_token_value(login(client).value).token
    assert token is not None

    def check() -> LLReply:
        info = client.getkey2("alice")
        hash_hex = token_hash(token, info.key_hex, HashAlgorithm.SHA1)
        return client.request(checktoken_command(hash_hex, "alice"), mode="enc")

    reply = check()
    assert reply.ok
    assert isinstance(reply.value, dict)
    assert "validUntil" in reply.value
    accounts.expire_all()
    assert check().code == 477
    fresh = connect(accounts)
    fresh.keyexchange()
    assert auth_with_token(fresh, SHA1_USER, token).code == 477
    assert accounts.lookup(token, NOW) is None


def test_a_token_expires_with_time() -> None:
    accounts = make_accounts(app_token_lifetime=60)
    token = acquire_token(accounts)
    assert accounts.token_valid(token, NOW + 59)
    later = connect(accounts)
    later.now = NOW + 61
    later.keyexchange()
    assert auth_with_token(later, SHA1_USER, token).code == 477


def test_killtoken_of_the_own_token_closes_the_socket() -> None:
    accounts = make_accounts()
    client = connect(accounts)
    token = parse_token_value(login(client).value).token
    assert token is not None
    info = client.getkey2("alice")
    command = client.encrypt(
        killtoken_command(token_hash(token, info.key_hex, HashAlgorithm.SHA1), "alice")
    )
    items = client.send(command)
    assert isinstance(items[0], TextReply)
    assert items[0].reply is not None
    assert items[0].reply.ok
    assert items[1] == Close(1000, "token killed")
    assert client.session.closed
    assert client.session.receive("keepalive", NOW) == []
    assert accounts.lookup(token, NOW) is None


def test_killtoken_of_another_token_keeps_the_socket() -> None:
    accounts = make_accounts()
    other_token = acquire_token(accounts, SHA256_USER)
    client = connect(accounts)
    login(client)
    info = client.getkey2(SHA256_USER.name)
    hash_hex = token_hash(other_token, info.key_hex, HashAlgorithm.SHA256)
    items = client.send(client.encrypt(killtoken_command(hash_hex, SHA256_USER.name)))
    assert len(items) == 1
    assert not client.session.closed
    info = client.getkey2(SHA256_USER.name)
    hash_hex = token_hash(other_token, info.key_hex, HashAlgorithm.SHA256)
    assert client.request(killtoken_command(hash_hex, SHA256_USER.name), mode="enc").code == 401


def test_fail_next_logins() -> None:
    accounts = make_accounts()
    accounts.fail_next_logins(2)
    client = connect(accounts)
    client.keyexchange()
    assert client.getjwt("alice", SHA1_USER.password).code == 401
    assert client.getjwt("alice", SHA1_USER.password).code == 401
    assert client.getjwt("alice", SHA1_USER.password).ok
    assert (accounts.logins_ok, accounts.logins_failed) == (1, 2)
    token = acquire_token(accounts)
    accounts.fail_next_logins(1)
    fresh = connect(accounts)
    fresh.keyexchange()
    assert auth_with_token(fresh, SHA1_USER, token).code == 401
    assert auth_with_token(fresh, SHA1_USER, token).ok


# --- timers, binary, robustness ---------------------------------------------------------------


def test_auth_timeout() -> None:
    client = connect()
    outputs = client.session.on_auth_timeout()
    items = [o for o in outputs if not isinstance(o, Send)]
    assert items == [Close(1008, "not authenticated in time")]
    assert client.session.receive("keepalive", NOW) == []
    assert client.session.on_auth_timeout() == []
    text = outputs[0]
    assert isinstance(text, Send)
    assert isinstance(text.messages[1], str)
    assert raw_body(text.messages[1])["Code"] == "420"
    done = connect()
    login(done)
    assert done.session.on_auth_timeout() == []


def test_binary_from_the_client_closes_with_1003() -> None:
    client = connect()
    assert client.session.receive_binary(b"\x03\x00") == [
        Close(1003, "binary messages are not accepted")
    ]
    assert client.session.receive_binary(b"") == []
    assert client.session.receive("keepalive", NOW) == []


def test_no_secrets_in_reprs() -> None:
    accounts = make_accounts()
    client = connect(accounts)
    token = parse_token_value(login(client).value).token
    assert token is not None
    texts = [
        repr(client.session),
        repr(accounts),
        repr(SHA1_USER),
        repr(accounts.lookup(token, NOW)),
    ]
    for text in texts:
        assert SHA1_USER.password not in text
        assert token not in text
    assert "alice" in repr(client.session)


def authenticated_client() -> SimClient:
    client = connect()
    login(client)
    return client


COMMAND_HEADS = st.sampled_from(
    [
        "",
        "keepalive",
        "jdev/sys/getkey",
        "jdev/sys/getkey2/",
        "jdev/sys/getjwt/",
        "jdev/sys/gettoken/",
        "authwithtoken/",
        "jdev/sys/authwithtoken/",
        "jdev/sys/refreshjwt/",
        "jdev/sys/checktoken/",
        "jdev/sys/killtoken/",
        "jdev/sys/keyexchange/",
        "jdev/sys/enc/",
        "jdev/sys/fenc/",
        "dev/sys/enc/",
        "data/LoxAPP3.json",
        "jdev/sps/",
    ]
)
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=80) | st.text(max_size=80)


def assert_only_outputs(outputs: list[object]) -> None:
    for output in outputs:
        assert isinstance(output, Send | Close | StartStreaming)
        if isinstance(output, Send):
            check_send(output)


@given(head=COMMAND_HEADS, tail=ANY_TEXT, authenticated=st.booleans())
def test_arbitrary_commands_never_raise(head: str, tail: str, authenticated: bool) -> None:
    client = authenticated_client() if authenticated else connect()
    outputs = client.session.receive(head + tail, NOW)
    assert_only_outputs(list(outputs))
    assert outputs, "every command gets an answer"
    read_outputs(client.reader, outputs)  # and the client can parse it


def test_lone_surrogates_in_a_command_do_not_break_the_reply() -> None:
    client = authenticated_client()
    reply = client.request("jdev/sps/io/\ud800/on")
    assert reply.code == 404
    assert reply.control == "dev/sps/io/?/on"


@given(garbage=st.binary(max_size=96), quote=st.booleans(), fenc=st.booleans())
def test_encrypted_garbage_is_401(garbage: bytes, quote: bool, fenc: bool) -> None:
    client = authenticated_client()
    cipher = base64.b64encode(garbage).decode()
    if quote:
        cipher = percent(cipher, safe="")
    outputs = client.session.receive(f"jdev/sys/{'fenc' if fenc else 'enc'}/{cipher}", NOW)
    assert_only_outputs(list(outputs))
    items = read_outputs(MessageReader(), outputs)
    assert len(items) == 1
    assert isinstance(items[0], TextReply)
    assert items[0].reply is not None
    assert items[0].reply.code == 401


def test_refresh_of_another_token_keeps_the_own_one() -> None:
    accounts = make_accounts()
    other = acquire_token(accounts, SHA256_USER)
    client = connect(accounts)
    own = parse_token_value(login(client).value).token
    info = client.getkey2(SHA256_USER.name)
    hash_hex = token_hash(other, info.key_hex, HashAlgorithm.SHA256)
    reply = client.request(refreshjwt_command(hash_hex, SHA256_USER.name), mode="enc")
    assert reply.ok
    assert client.session.token == own
    assert accounts.lookup(other, NOW) is None


# --- accounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("admin:secret", User("admin", "secret", HashAlgorithm.SHA256)),
        ("admin:secret:SHA1", User("admin", "secret", HashAlgorithm.SHA1)),
        ("admin:secret:sha256", User("admin", "secret", HashAlgorithm.SHA256)),
        ("admin:pa:ss:word", User("admin", "pa:ss:word", HashAlgorithm.SHA256)),
        ("admin:pa:ss:SHA1", User("admin", "pa:ss", HashAlgorithm.SHA1)),
    ],
)
def test_parse_user_spec(spec: str, expected: User) -> None:
    assert parse_user_spec(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("admin", "name is missing"),
        (":secret", "name is missing"),
        ("ad/min:secret", "must not contain '/'"),
        ("admin:", "empty password"),
        ("admin::SHA1", "empty password"),
        ("admin:hunter2:SHA512", "unknown hash algorithm 'SHA512'"),
        ("admin:hunter2:md5", "unknown hash algorithm 'md5'"),
    ],
)
def test_parse_user_spec_errors(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        parse_user_spec(spec)
    assert "hunter2" not in str(info.value)


def test_user_and_token_reprs_hide_secrets() -> None:
    user = parse_user_spec("admin:hunter2:SHA1")
    assert "hunter2" not in repr(user)
    assert user.unsecure_password
    accounts = Accounts([user], random_bytes=deterministic_random())
    issued = accounts.issue_token(user, 4, CLIENT_UUID, NOW)
    assert issued.token not in repr(issued)
    assert issued.key not in repr(issued)
    assert accounts.users == (user,)
    assert list(accounts.tokens) == [issued]
    assert "keyed=False" in repr(CommandCrypto())


def test_token_lifetimes_rights_and_shapes() -> None:
    accounts = make_accounts()
    app = accounts.issue_token(SHA1_USER, 4, CLIENT_UUID, NOW)
    web = accounts.issue_token(SHA1_USER, 2, CLIENT_UUID, NOW)
    assert app.valid_until - web.valid_until == 30 * 86400 - 12 * 3600
    assert (app.token_rights, web.token_rights) == (1668, 1666)
    header, claims, _signature = app.token.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    assert decoded["user"] == "alice"
    assert decoded["exp"] == app.valid_until + 1230768000
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["typ"] == "JWT"
    assert accounts.refresh("unknown", NOW) is None
    new = accounts.refresh(app.token, NOW)
    assert new is not None
    assert accounts.lookup(app.token, NOW) is None
    assert accounts.kill(new.token)
    assert not accounts.kill(new.token)
    assert accounts.token_valid(web.token, NOW)
    assert not accounts.token_valid(web.token, NOW + 12 * 3600)


def test_check_password_counts_as_a_login() -> None:
    accounts = make_accounts()
    assert accounts.check_password("alice", SHA1_USER.password)
    assert not accounts.check_password("alice", "wrong")
    assert not accounts.check_password("nobody", "x")
    accounts.fail_next_logins(1)
    assert not accounts.check_password("alice", SHA1_USER.password)
    assert (accounts.logins_ok, accounts.logins_failed) == (1, 3)


def http_getjwt(accounts: Accounts, user: User, permission: int = 4) -> LLReply:
    reply = parse_ll_reply(accounts.http_command(f"jdev/sys/getkey2/{user.name}", NOW) or "")
    info = parse_getkey2_value(reply.value)
    hash_hex = credential_hash(
        user.name, user.password, info.key_hex, info.salt, HashAlgorithm.SHA1
    )
    command = getjwt_command(hash_hex, user.name, permission, CLIENT_UUID, "http")
    return parse_ll_reply(accounts.http_command(command, NOW) or "")


def test_http_login_without_a_websocket() -> None:
    accounts = make_accounts()
    reply = http_getjwt(accounts, SHA1_USER)
    assert reply.ok
    assert reply.control == "dev/sys/getjwt/" + reply.control.split("/", 3)[3]
    token = parse_token_value(reply.value).token
    assert token is not None
    assert accounts.lookup(token, NOW) is not None
    assert accounts.http_command("jdev/sps/LoxAPPversion3", NOW) is None


def test_http_one_time_keys_belong_to_the_user_and_allow_side_by_side_logins() -> None:
    accounts = make_accounts()
    infos = []
    for _ in range(2):
        reply = parse_ll_reply(accounts.http_command("jdev/sys/getkey2/alice", NOW) or "")
        infos.append(parse_getkey2_value(reply.value))
    for info in infos:  # both clients log in, in the order their keys were issued
        hash_hex = credential_hash(
            "alice", SHA1_USER.password, info.key_hex, info.salt, HashAlgorithm.SHA1
        )
        assert accounts.http_login_with_credentials("alice", hash_hex) is not None
        assert accounts.http_login_with_credentials("alice", hash_hex) is None  # used up
    accounts.issue_http_key("nobody")  # unknown users get a key that leads nowhere
    assert accounts.http_login_with_credentials("nobody", "00") is None
    for _ in range(12):
        accounts.issue_http_key("alice")
    assert len(accounts._http_keys["alice"]) == 8


def test_http_refusals_and_token_commands() -> None:
    accounts = make_accounts()
    bad = "jdev/sys/getjwt/00/alice/4/x/y"
    assert parse_ll_reply(accounts.http_command(bad, NOW) or "").code == 401
    assert parse_ll_reply(accounts.http_command("jdev/sys/getjwt/00", NOW) or "").code == 400
    assert parse_ll_reply(accounts.http_command("jdev/sys/getkey2/", NOW) or "").code == 400
    assert parse_ll_reply(accounts.http_command("jdev/sys/checktoken/x", NOW) or "").code == 400
    token = parse_token_value(http_getjwt(accounts, SHA1_USER).value).token
    assert token is not None

    def token_command(command: Callable[[str, str], str]) -> LLReply:
        assert token is not None
        grant = accounts.issue_http_key("alice")
        hash_hex = token_hash(token, grant.key, HashAlgorithm.SHA1)
        return parse_ll_reply(accounts.http_command(command(hash_hex, "alice"), NOW) or "")

    assert token_command(checktoken_command).ok
    refreshed = token_command(refreshjwt_command)
    assert refreshed.ok
    assert accounts.lookup(token, NOW) is None
    token = parse_token_value(refreshed.value).token
    assert token is not None
    grant = accounts.issue_http_key("alice")
    hash_hex = token_hash(token, grant.key, HashAlgorithm.SHA256)
    assert accounts.http_login_with_token("alice", hash_hex, NOW).token is not None
    assert accounts.http_login_with_token("alice", hash_hex, NOW).token is None  # key used
    assert token_command(killtoken_command).ok
    assert token_command(checktoken_command).code == 401
