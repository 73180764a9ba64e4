from __future__ import annotations

import ast
import base64
import contextlib
import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric import padding as asymmetric_padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.padding import PKCS7
from cryptography.x509.oid import NameOID
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.protocol import (
    AES_BLOCK_SIZE,
    EncryptedCommand,
    RemoteProtocolError,
    SessionKey,
    _auth,
    _crypto,
    aes_decrypt,
    aes_decrypt_b64,
    aes_encrypt,
    aes_encrypt_b64,
    decode_encrypted_command,
    decrypt_control_echo,
    decrypt_fenc_reply,
    decrypt_session_key,
    encrypt_command,
    encrypt_fenc_reply,
    encrypt_session_key,
    is_encrypted_command,
    keyexchange_command,
    load_public_key,
    normalize_public_key_pem,
    salt_from_bytes,
    session_key_payload,
)


@pytest.fixture(scope="module")
def rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _session(vector: dict[str, Any]) -> SessionKey:
    return SessionKey(key=bytes.fromhex(vector["key_hex"]), iv=bytes.fromhex(vector["iv_hex"]))


SESSION = SessionKey(key=bytes(range(32)), iv=bytes(range(100, 116)))

keys = st.builds(
    SessionKey,
    key=st.binary(min_size=32, max_size=32),
    iv=st.binary(min_size=16, max_size=16),
)
text_without_nul = st.text(
    alphabet=st.characters(exclude_characters="\0", exclude_categories=("Cs",))
)
salts = st.binary(min_size=1, max_size=16).map(salt_from_bytes)


def test_protocol_modules_import_no_io_or_randomness():
    forbidden = {"trio", "socket", "time", "os", "random", "secrets"}
    for module in (_auth, _crypto):
        tree = ast.parse(Path(module.__file__ or "").read_text("utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not names & forbidden, (module.__name__, names)


# --- AES against recorded vectors -----------------------------------------------------------------


def test_aes_vectors(vectors):
    for vector in vectors["aes"]:
        session = _session(vector)
        if vector["op"] == "encrypt":
            assert aes_encrypt_b64(vector["plaintext"], session) == vector["base64"]
        else:
            assert aes_decrypt_b64(vector["base64"], session) == vector["plaintext"]
            raw = aes_decrypt(base64.b64decode(vector["base64"]), session)
            assert raw == vector["plaintext"].encode()


def test_encrypt_command_matches_the_vector(vectors):
    vector = vectors["aes"][0]
    assert vector["plaintext"] == "salt/d93b/jdev/sys/getkey2/xcid"
    command = encrypt_command("jdev/sys/getkey2/xcid", _session(vector), "d93b")
    assert command == "jdev/sys/enc/" + quote(vector["base64"], safe="")
    assert command == "jdev/sys/enc/FqlXx4NrS7XYxddF8kTP1dadaH9FY%2FMBt9Z1zC%2FANqI%3D"
    decoded = decode_encrypted_command(command, _session(vector))
    assert decoded == EncryptedCommand(
        salt="d93b", next_salt=None, command="jdev/sys/getkey2/xcid", encrypt_response=False
    )


def test_fenc_reply_vector(vectors):
    vector = vectors["aes"][2]
    assert decrypt_fenc_reply(vector["base64"], _session(vector)) == vector["plaintext"]


def test_zero_padding_adds_no_block_when_aligned():
    assert len(aes_encrypt(b"x" * 16, SESSION)) == 16
    assert len(aes_encrypt(b"x" * 17, SESSION)) == 32
    assert aes_encrypt(b"", SESSION) == b""
    # Zero padding is what an independent AES sees after decrypting.
    decryptor = Cipher(algorithms.AES(SESSION.key), modes.CBC(SESSION.iv)).decryptor()
    plain = decryptor.update(aes_encrypt(b"abc", SESSION)) + decryptor.finalize()
    assert plain == b"abc" + bytes(13)


@given(keys, text_without_nul)
def test_aes_text_round_trip(session, text):
    assert aes_decrypt_b64(aes_encrypt_b64(text, session), session) == text


@given(keys, st.binary())
def test_aes_bytes_round_trip_loses_only_trailing_nul(session, data):
    ciphertext = aes_encrypt(data, session)
    assert len(ciphertext) % AES_BLOCK_SIZE == 0
    assert aes_decrypt(ciphertext, session) == data.rstrip(b"\0")


def test_aes_errors():
    with pytest.raises(RemoteProtocolError, match="multiple of 16"):
        aes_decrypt(b"x" * 15, SESSION)
    with pytest.raises(RemoteProtocolError, match="Base64"):
        aes_decrypt_b64("not base64!", SESSION)
    with pytest.raises(RemoteProtocolError, match="not UTF-8") as info:
        aes_decrypt_b64(base64.b64encode(aes_encrypt(b"ok\xff", SESSION)).decode(), SESSION)
    assert info.value.offset == 2


def test_base64_with_line_breaks_is_accepted():
    cipher = aes_encrypt_b64("x" * 100, SESSION)
    wrapped = "\n".join(cipher[i : i + 64] for i in range(0, len(cipher), 64))
    assert aes_decrypt_b64(wrapped, SESSION) == "x" * 100


# --- session key ----------------------------------------------------------------------------------


def test_session_key_validates_lengths_without_showing_the_value():
    with pytest.raises(ValueError, match="key must have 32 bytes, got 16"):
        SessionKey(key=b"k" * 16, iv=b"i" * 16)
    with pytest.raises(ValueError, match="iv must have 16 bytes, got 32"):
        SessionKey(key=b"k" * 32, iv=b"i" * 32)


def test_session_key_repr_hides_key_and_iv():
    session = SessionKey(key=b"K" * 32, iv=b"V" * 16)
    text = repr(session)
    for secret in (session.key.hex(), session.iv.hex(), "KKKK", "VVVV"):
        assert secret not in text


def test_session_key_payload_is_lowercase_key_colon_iv():
    assert session_key_payload(SESSION) == (
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f:"
        "6465666768696a6b6c6d6e6f70717273"
    )


@given(keys)
def test_session_key_rsa_round_trip(rsa_private_key, session):
    encrypted = encrypt_session_key(rsa_private_key.public_key(), session)
    assert "\n" not in encrypted
    assert decrypt_session_key(rsa_private_key, encrypted) == session
    assert keyexchange_command(encrypted) == f"jdev/sys/keyexchange/{encrypted}"
    # The HTTP ?sk= variant arrives percent-encoded.
    assert decrypt_session_key(rsa_private_key, quote(encrypted, safe="")) == session


@pytest.mark.parametrize(
    "payload",
    [b"no colon", b"zz:zz", b"00:00", b"\xff\xfe:00", b"a:b:c", b""],
)
def test_bad_session_key_payload_is_a_remote_error(rsa_private_key, payload):
    cipher = rsa_private_key.public_key().encrypt(payload, asymmetric_padding.PKCS1v15())
    with pytest.raises(RemoteProtocolError, match="session key"):
        decrypt_session_key(rsa_private_key, base64.b64encode(cipher).decode())


@pytest.mark.parametrize("text", ["!!!", "", base64.b64encode(b"x" * 256).decode()])
def test_undecryptable_session_key_is_a_remote_error(rsa_private_key, text):
    with pytest.raises(RemoteProtocolError, match="session key"):
        decrypt_session_key(rsa_private_key, text)


# --- public keys ----------------------------------------------------------------------------------


def _pem_lines_ok(pem: str) -> bool:
    lines = pem.strip().splitlines()
    return (
        lines[0] == "-----BEGIN PUBLIC KEY-----"
        and lines[-1] == "-----END PUBLIC KEY-----"
        and all(len(line) == 64 for line in lines[1:-2])
        and 0 < len(lines[-2]) <= 64
    )


def test_public_key_vector(vectors):
    for vector in vectors["public_key"]:
        pem = normalize_public_key_pem(vector["value"])
        assert _pem_lines_ok(pem)
        body = vector["value"].removeprefix("-----BEGIN CERTIFICATE-----")
        body = body.removesuffix("-----END CERTIFICATE-----")
        assert "".join(pem.strip().splitlines()[1:-1]) == body
        assert load_public_key(vector["value"]).key_size == vector["expected_rsa_key_bits"]
        assert load_public_key(pem).key_size == vector["expected_rsa_key_bits"]
        assert normalize_public_key_pem(pem) == pem


def test_key_too_small_for_the_session_payload_is_a_remote_error(vectors):
    key = load_public_key(vectors["public_key"][0]["value"])
    with pytest.raises(RemoteProtocolError, match="511 bits is too small"):
        encrypt_session_key(key, SESSION)


def test_proper_and_reformatted_public_key_pem(rsa_private_key):
    pem = (
        rsa_private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert normalize_public_key_pem(pem) == pem
    assert normalize_public_key_pem(pem.replace("\n", "\r\n")) == pem
    # The getPublicKey quirk with a full-size key: one line, labelled CERTIFICATE.
    body = "".join(pem.splitlines()[1:-1])
    one_line = f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----"
    assert normalize_public_key_pem(one_line) == pem
    assert (
        load_public_key(one_line).public_numbers() == rsa_private_key.public_key().public_numbers()
    )


def _self_signed(key: rsa.RSAPrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=365))
        .sign(key, hashes.SHA256())
    )


def test_certificate_chain_uses_the_last_certificate(rsa_private_key):
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = _self_signed(other_key, "Loxone Root")
    leaf = _self_signed(rsa_private_key, "Miniserver")
    chain = "\n".join(
        cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (root, leaf)
    )
    expected = rsa_private_key.public_key().public_numbers()
    assert load_public_key(chain).public_numbers() == expected
    reversed_chain = "".join(
        cert.public_bytes(serialization.Encoding.PEM).decode() for cert in (leaf, root)
    )
    assert (
        load_public_key(reversed_chain).public_numbers() == other_key.public_key().public_numbers()
    )
    # A real certificate squeezed onto one line is still recognised as a certificate.
    body = base64.b64encode(leaf.public_bytes(serialization.Encoding.DER)).decode()
    one_line = f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----"
    assert load_public_key(one_line).public_numbers() == expected


def test_non_rsa_key_is_normalised_but_not_loaded():
    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert normalize_public_key_pem(ec_pem) == ec_pem
    with pytest.raises(RemoteProtocolError, match="not RSA"):
        load_public_key(ec_pem)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no -----BEGIN"),
        ("MFswDQYJKoZIhvcNAQEBBQADSgAwRwJAb1jLHZz08OdFf61dpQPFKWJjt8jdb1o3", "no -----BEGIN"),
        ("-----BEGIN CERTIFICATE-----!!!-----END CERTIFICATE-----", "not valid Base64"),
        ("-----BEGIN CERTIFICATE-----AAAA-----END CERTIFICATE-----", "neither"),
        ("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----", "neither"),
    ],
)
def test_garbage_public_key_is_a_remote_error(text, message):
    with pytest.raises(RemoteProtocolError, match=message):
        normalize_public_key_pem(text)


@given(st.text())
def test_arbitrary_public_key_text_raises_only_remote_errors(text):
    for candidate in (text, f"-----BEGIN PUBLIC KEY-----{text}-----END PUBLIC KEY-----"):
        with contextlib.suppress(RemoteProtocolError):
            normalize_public_key_pem(candidate)


# --- encrypted commands ---------------------------------------------------------------------------


@given(
    session=keys,
    command=text_without_nul.filter(bool),
    salt=salts,
    next_salt=st.none() | salts,
    encrypt_response=st.booleans(),
)
def test_encrypt_command_round_trip(session, command, salt, next_salt, encrypt_response):
    request = encrypt_command(
        command, session, salt, next_salt=next_salt, encrypt_response=encrypt_response
    )
    assert request.startswith("jdev/sys/fenc/" if encrypt_response else "jdev/sys/enc/")
    assert request.count("/") == 3  # the cipher is one path segment
    assert is_encrypted_command(request)
    decoded = decode_encrypted_command(request, session)
    assert decoded == EncryptedCommand(
        salt=salt, next_salt=next_salt, command=command, encrypt_response=encrypt_response
    )
    assert decrypt_control_echo(request, session) == command
    assert decrypt_control_echo(request.removeprefix("j"), session) == command


def test_next_salt_plaintext():
    request = encrypt_command("jdev/sps/io/x/on", SESSION, "ab", next_salt="cd")
    cipher = request.removeprefix("jdev/sys/enc/").replace("%2F", "/").replace("%2B", "+")
    assert aes_decrypt_b64(cipher.replace("%3D", "="), SESSION) == "nextSalt/ab/cd/jdev/sps/io/x/on"


def _raw_cipher(plaintext: bytes, *, pkcs7_after_nul: bool) -> str:
    """Encrypt as other clients do, independently of the code under test."""
    if pkcs7_after_nul:  # PyLoxone, openHAB, node-lox-ws-api: "\0" then PKCS#7
        padder = PKCS7(128).padder()
        padded = padder.update(plaintext + b"\0") + padder.finalize()
    else:  # lxcommunicator, LxCommunicator.NET: zeros only
        padded = plaintext + bytes(-len(plaintext) % 16)
    encryptor = Cipher(algorithms.AES(SESSION.key), modes.CBC(SESSION.iv)).encryptor()
    return base64.b64encode(encryptor.update(padded) + encryptor.finalize()).decode()


@pytest.mark.parametrize("pkcs7_after_nul", [False, True])
@pytest.mark.parametrize("prefix", ["jdev/sys/enc/", "dev/sys/enc/", "jdev/sys/fenc/"])
@pytest.mark.parametrize("percent_encode", [False, True])
def test_both_paddings_and_unescaped_slashes_are_accepted(pkcs7_after_nul, prefix, percent_encode):
    # 40 plaintext bytes: the cipher is long enough to contain "/" and "+" in most keys.
    plaintext = b"salt/0011/jdev/sys/getkey2/admin?x=1&y=2"
    cipher = _raw_cipher(plaintext, pkcs7_after_nul=pkcs7_after_nul)
    request = prefix + (quote(cipher, safe="") if percent_encode else cipher)
    decoded = decode_encrypted_command(request, SESSION)
    assert decoded.salt == "0011"
    assert decoded.command == "jdev/sys/getkey2/admin?x=1&y=2"
    assert decoded.encrypt_response is ("fenc" in prefix)


def test_fenc_reply_with_pkcs7_after_nul_is_accepted():
    reply = '{"LL":{"control":"jdev/sys/getkey2/a","code":200,"value":{}}}'
    cipher = _raw_cipher(reply.encode(), pkcs7_after_nul=True)
    assert decrypt_fenc_reply(cipher, SESSION) == reply


@given(keys, text_without_nul)
def test_fenc_reply_round_trip(session, json_text):
    assert decrypt_fenc_reply(encrypt_fenc_reply(json_text, session), session) == json_text


@pytest.mark.parametrize(
    ("plaintext", "message"),
    [
        (b"jdev/sys/getkey2/admin", "neither salt/ nor nextSalt/"),
        (b"salt/abc", "empty salt or no command"),
        (b"salt//jdev/sys/getkey", "empty salt or no command"),
        (b"nextSalt/ab//jdev/sys/getkey", "empty next salt"),
        (b"nextSalt/ab/cd", "empty salt or no command"),
        (b"salt/ab/\xff\xfe", "not UTF-8"),
    ],
)
def test_malformed_decrypted_command_is_a_remote_error(plaintext, message):
    request = "jdev/sys/enc/" + _raw_cipher(plaintext, pkcs7_after_nul=False)
    with pytest.raises(RemoteProtocolError, match=message):
        decode_encrypted_command(request, SESSION)


@pytest.mark.parametrize(
    ("request_text", "message"),
    [
        ("jdev/sys/getkey2/admin", "not an encrypted command"),
        ("jdev/sys/enc/", "neither salt/ nor nextSalt/"),
        ("jdev/sys/enc/%%%", "Base64"),
        ("jdev/sys/enc/AAAA", "multiple of 16"),
    ],
)
def test_undecryptable_request_is_a_remote_error(request_text, message):
    with pytest.raises(RemoteProtocolError, match=message):
        decode_encrypted_command(request_text, SESSION)


@given(st.text())
def test_arbitrary_requests_raise_only_remote_errors(text):
    for candidate in (text, "jdev/sys/enc/" + text, "dev/sys/fenc/" + text):
        with contextlib.suppress(RemoteProtocolError):
            decode_encrypted_command(candidate, SESSION)
    with contextlib.suppress(RemoteProtocolError):
        decrypt_fenc_reply(text, SESSION)


@given(st.binary())
def test_arbitrary_ciphertexts_raise_only_remote_errors(data):
    cipher = base64.b64encode(data).decode()
    for candidate in ("jdev/sys/fenc/" + cipher, "jdev/sys/enc/" + quote(cipher, safe="")):
        with contextlib.suppress(RemoteProtocolError):
            decode_encrypted_command(candidate, SESSION)
    with contextlib.suppress(RemoteProtocolError):
        decrypt_fenc_reply(cipher, SESSION)


def test_is_encrypted_command():
    assert is_encrypted_command("jdev/sys/enc/abc")
    assert is_encrypted_command("dev/sys/fenc/abc")
    assert not is_encrypted_command("jdev/sys/getkey2/admin")
    assert not is_encrypted_command("jdev/sys/encx/abc")


def test_plain_control_echo_is_returned_unchanged():
    assert decrypt_control_echo("dev/sps/enablebinstatusupdate", SESSION) == (
        "dev/sps/enablebinstatusupdate"
    )


def test_control_echo_with_unencoded_cipher():
    request = encrypt_command("jdev/sps/LoxAPPversion3", SESSION, "beef", next_salt="f00d")
    cipher = request.removeprefix("jdev/sys/enc/")
    raw = cipher.replace("%2F", "/").replace("%2B", "+").replace("%3D", "=")
    assert "%" not in raw
    assert decrypt_control_echo("dev/sys/enc/" + raw, SESSION) == "jdev/sps/LoxAPPversion3"


@pytest.mark.parametrize(
    ("command", "salt", "next_salt"),
    [
        ("jdev/sys/getkey", "", None),
        ("jdev/sys/getkey", "a/b", None),
        ("jdev/sys/getkey", "ab", "c/d"),
        ("jdev/sys/getkey", "ab", ""),
        ("jdev/sys/get\0key", "ab", None),
    ],
)
def test_encrypt_command_rejects_bad_arguments(command, salt, next_salt):
    with pytest.raises(ValueError, match=r"salt|NUL"):
        encrypt_command(command, SESSION, salt, next_salt=next_salt)


def test_salt_from_bytes():
    assert salt_from_bytes(b"\xd9\x3b") == "d93b"
    with pytest.raises(ValueError, match="at least one"):
        salt_from_bytes(b"")
