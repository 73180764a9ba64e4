"""Command encryption: the Miniserver's public key, the session key, AES and enc/fenc commands.

Parameters ([DOC] "Command Encryption"; protocol doc §4.3): RSA PKCS#1 v1.5 with Base64 without
line wraps; AES-256-CBC with zero-byte padding, one IV for the whole session, Base64 without line
wraps. Key, IV and salts are arguments: nothing here draws random numbers (the padding randomness
inside RSA encryption excepted).

Both directions are here: the client encrypts commands and decrypts ``fenc`` replies; the simulator
decrypts the session key and commands and encrypts replies. Whatever comes from the other side and
cannot be decoded is a ``RemoteProtocolError``; no key or plaintext ever appears in its message.
"""

from __future__ import annotations

import base64
import re
from collections import deque
from collections.abc import Callable
from urllib.parse import quote, unquote

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    PublicFormat,
    load_der_public_key,
)

from ..errors import RemoteProtocolError

AES_KEY_SIZE = 32
AES_IV_SIZE = 16
AES_BLOCK_SIZE = 16

_ENCRYPTED_PREFIXES = ("jdev/sys/enc/", "jdev/sys/fenc/", "dev/sys/enc/", "dev/sys/fenc/")
# Markers found one kind at a time: one pattern spanning BEGIN ... END (lazily) would rescan the
# rest of the text from every BEGIN without an END, quadratic in a hostile answer's length.
_PEM_BEGIN = re.compile(r"-----BEGIN [A-Z0-9 ]+-----")
_PEM_END = re.compile(r"-----END [A-Z0-9 ]+-----")
#: A getcertificate chain is a few KiB; the bound keeps a hostile answer from costing more.
MAX_PUBLIC_KEY_TEXT_LENGTH = 256 * 1024
_WHITESPACE = re.compile(r"\s+")

# --- the Miniserver's public key -----------------------------------------------------------------


def normalize_public_key_pem(text: str) -> str:
    """Turn what the Miniserver gives as its public key into a proper ``PUBLIC KEY`` PEM.

    Accepted: the one-line SubjectPublicKeyInfo mislabelled ``CERTIFICATE`` that getPublicKey
    returns; a real ``PUBLIC KEY`` PEM; a getcertificate chain, of which the **last** certificate's
    key is used ([DOC] "Encryption" step 2). Markers are dropped and the Base64 is re-wrapped rather
    than patched: patching the labels failed on Gen 2 Miniservers (protocol doc §4.3).
    """
    key = _load_public_key_any(text)
    return key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode("ascii")


def load_public_key(text: str) -> RSAPublicKey:
    """Load the Miniserver's public key (any form ``normalize_public_key_pem`` accepts)."""
    key = _load_public_key_any(text)
    if not isinstance(key, RSAPublicKey):
        raise RemoteProtocolError(f"public key is not RSA but {type(key).__name__}")
    return key


def _load_public_key_any(text: str) -> PublicKeyTypes:
    if len(text) > MAX_PUBLIC_KEY_TEXT_LENGTH:
        raise RemoteProtocolError(
            f"public key: {len(text)} characters, at most {MAX_PUBLIC_KEY_TEXT_LENGTH} expected"
        )
    body = _last_pem_body(text)
    if body is None:
        raise RemoteProtocolError("public key: no -----BEGIN ...----- block found")
    der = _b64decode(body, "public key")
    # The label cannot be trusted (getPublicKey calls an SPKI a CERTIFICATE), so the DER decides.
    try:
        return x509.load_der_x509_certificate(der).public_key()
    except (ValueError, UnsupportedAlgorithm):
        pass
    try:
        return load_der_public_key(der)
    except (ValueError, UnsupportedAlgorithm):
        raise RemoteProtocolError(
            "public key: the PEM block holds neither an X.509 certificate nor a public key"
        ) from None


def _last_pem_body(text: str) -> str | None:
    """What lies between the last END marker and the BEGIN marker closest before it."""
    end = _last_match(_PEM_END, text, len(text))
    begin = None if end is None else _last_match(_PEM_BEGIN, text, end.start())
    if end is None or begin is None:
        return None
    return text[begin.end() : end.start()]


def _last_match(pattern: re.Pattern[str], text: str, stop: int) -> re.Match[str] | None:
    last = deque(pattern.finditer(text, 0, stop), maxlen=1)
    return last[0] if last else None


# --- session key ----------------------------------------------------------------------------------


def _check_size(size: int) -> Callable[[object, attrs.Attribute[bytes], bytes], None]:
    def check(_instance: object, attribute: attrs.Attribute[bytes], value: bytes) -> None:
        # Say the length only: the value is a secret.
        if len(value) != size:
            raise ValueError(f"{attribute.name} must have {size} bytes, got {len(value)}")

    return check


@attrs.frozen
class SessionKey:
    """The AES-256 key and the IV used for every message of one WebSocket session."""

    key: bytes = attrs.field(repr=False, validator=_check_size(AES_KEY_SIZE))
    iv: bytes = attrs.field(repr=False, validator=_check_size(AES_IV_SIZE))


def session_key_payload(session: SessionKey) -> str:
    """``"{keyHex}:{ivHex}"`` in lowercase hex, the plaintext of the key exchange."""
    return f"{session.key.hex()}:{session.iv.hex()}"


def encrypt_session_key(public_key: RSAPublicKey, session: SessionKey) -> str:
    """RSA-PKCS#1-v1.5-encrypt the session key payload; Base64 without line wraps."""
    try:
        cipher = public_key.encrypt(
            session_key_payload(session).encode("ascii"), padding.PKCS1v15()
        )
    except ValueError:
        # The payload is 97 bytes: a key under 864 bits cannot carry it.
        raise RemoteProtocolError(
            f"public key of {public_key.key_size} bits is too small for the session key"
        ) from None
    return base64.b64encode(cipher).decode("ascii")


def decrypt_session_key(private_key: RSAPrivateKey, encrypted_b64: str) -> SessionKey:
    """Simulator side of the key exchange: recover the client's ``SessionKey``."""
    if "%" in encrypted_b64:  # the HTTP ``?sk=`` variant is URI-encoded
        encrypted_b64 = unquote(encrypted_b64)
    cipher = _b64decode(encrypted_b64, "session key")
    try:
        payload = private_key.decrypt(cipher, padding.PKCS1v15()).decode("ascii")
        key_hex, iv_hex = payload.split(":")
        key, iv = bytes.fromhex(key_hex), bytes.fromhex(iv_hex)
    except ValueError:  # RSA failure, non-ASCII, not "a:b", not hex
        raise RemoteProtocolError(
            "session key cannot be decrypted or is not keyHex:ivHex"
        ) from None
    if len(key) != AES_KEY_SIZE or len(iv) != AES_IV_SIZE:
        raise RemoteProtocolError(f"session key has {len(key)}+{len(iv)} bytes, expected 32+16")
    return SessionKey(key=key, iv=iv)


# --- AES ------------------------------------------------------------------------------------------


def _cipher(session: SessionKey) -> Cipher[modes.CBC]:
    return Cipher(algorithms.AES(session.key), modes.CBC(session.iv))


def aes_encrypt(plaintext: bytes, session: SessionKey) -> bytes:
    """AES-256-CBC with zero-byte padding (none when ``plaintext`` is already block-aligned)."""
    padded = plaintext + bytes(-len(plaintext) % AES_BLOCK_SIZE)
    encryptor = _cipher(session).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def aes_decrypt(ciphertext: bytes, session: SessionKey) -> bytes:
    """Decrypt and strip the trailing NUL bytes of zero padding."""
    return _aes_decrypt_raw(ciphertext, session).rstrip(b"\0")


def _aes_decrypt_raw(ciphertext: bytes, session: SessionKey) -> bytes:
    if len(ciphertext) % AES_BLOCK_SIZE:
        raise RemoteProtocolError(
            f"AES ciphertext of {len(ciphertext)} bytes is not a multiple of {AES_BLOCK_SIZE}"
        )
    decryptor = _cipher(session).decryptor()
    return decryptor.update(ciphertext) + decryptor.finalize()


def aes_encrypt_b64(text: str, session: SessionKey) -> str:
    """``aes_encrypt`` of UTF-8 text, as Base64."""
    return base64.b64encode(aes_encrypt(text.encode(), session)).decode("ascii")


def aes_decrypt_b64(encrypted_b64: str, session: SessionKey) -> str:
    """``aes_decrypt`` of Base64, as UTF-8 text (e.g. the one-time key of a keyexchange reply)."""
    plaintext = aes_decrypt(_b64decode(encrypted_b64, "AES ciphertext"), session)
    return _utf8(plaintext, "AES plaintext")


def _decrypt_text(encrypted_b64: str, session: SessionKey, what: str) -> str:
    # The text ends at its first NUL: clients pad with zeros, or with one NUL and then PKCS#7
    # (protocol doc §9c item 12). Neither commands nor JSON contain a raw NUL.
    plaintext = _aes_decrypt_raw(_b64decode(encrypted_b64, what), session)
    return _utf8(plaintext.split(b"\0", 1)[0], what)


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(_WHITESPACE.sub("", text), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII text
        raise RemoteProtocolError(f"{what} is not valid Base64") from None


def _utf8(data: bytes, what: str) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(f"{what} is not UTF-8", offset=exc.start) from None


# --- encrypted commands -----------------------------------------------------------------------


@attrs.frozen
class EncryptedCommand:
    """A command decrypted from ``jdev/sys/enc/…`` or ``jdev/sys/fenc/…``."""

    salt: str
    next_salt: str | None
    command: str
    encrypt_response: bool


def salt_from_bytes(random_bytes: bytes) -> str:
    """A salt as lowercase hex of caller-provided random bytes (2 to 16 are usual)."""
    if not random_bytes:
        raise ValueError("a salt needs at least one random byte")
    return random_bytes.hex()


def encrypt_command(
    command: str,
    session: SessionKey,
    salt: str,
    *,
    next_salt: str | None = None,
    encrypt_response: bool = False,
) -> str:
    """Wrap ``command`` as ``jdev/sys/enc/…`` (or ``fenc`` when the reply shall be encrypted too).

    Pass ``next_salt`` to rotate the salt: the Miniserver then expects ``next_salt`` next time.
    """
    if "\0" in command:
        raise ValueError("a command must not contain NUL: the Miniserver ends it there")
    _check_salt(salt)
    if next_salt is None:
        plaintext = f"salt/{salt}/{command}"
    else:
        _check_salt(next_salt)
        plaintext = f"nextSalt/{salt}/{next_salt}/{command}"
    kind = "fenc" if encrypt_response else "enc"
    return f"jdev/sys/{kind}/{quote(aes_encrypt_b64(plaintext, session), safe='')}"


def _check_salt(salt: str) -> None:
    if not salt or "/" in salt or "\0" in salt:
        raise ValueError("a salt must be non-empty and contain neither '/' nor NUL")


def is_encrypted_command(request: str) -> bool:
    """Whether ``request`` (a command, or a reply's ``control``) is ``enc``/``fenc``."""
    return request.startswith(_ENCRYPTED_PREFIXES)


def decode_encrypted_command(request: str, session: SessionKey) -> EncryptedCommand:
    """Simulator side: decrypt an ``enc``/``fenc`` command (``jdev/`` or ``dev/`` prefix).

    Everything after the prefix is the cipher, ``/`` included: some clients leave it unescaped.
    """
    for prefix in _ENCRYPTED_PREFIXES:
        if request.startswith(prefix):
            break
    else:
        raise RemoteProtocolError("not an encrypted command (no jdev/sys/enc/ or fenc/ prefix)")
    # Base64 has no "%", so percent-decoding is harmless for clients that did not encode.
    plaintext = _decrypt_text(unquote(request[len(prefix) :]), session, "encrypted command")
    return _parse_salted(plaintext, encrypt_response="/fenc/" in prefix)


def _parse_salted(plaintext: str, *, encrypt_response: bool) -> EncryptedCommand:
    head, _, rest = plaintext.partition("/")
    if head == "salt":
        salt, _, command = rest.partition("/")
        next_salt = None
    elif head == "nextSalt":
        salt, _, rest = rest.partition("/")
        next_salt, _, command = rest.partition("/")
        if not next_salt:
            raise RemoteProtocolError("decrypted command has an empty next salt")
    else:
        raise RemoteProtocolError("decrypted command starts with neither salt/ nor nextSalt/")
    if not salt or not command:
        raise RemoteProtocolError("decrypted command has an empty salt or no command")
    return EncryptedCommand(
        salt=salt, next_salt=next_salt, command=command, encrypt_response=encrypt_response
    )


def decrypt_control_echo(control: str, session: SessionKey) -> str:
    """The command a reply to an encrypted command answers, from its ``LL.control`` echo.

    The echo is the encrypted command (``jdev/sys/enc/<cipher>`` or ``dev/sys/fenc/<cipher>``);
    the result is the inner command without its salt prefix. Other controls come back unchanged.
    """
    if not is_encrypted_command(control):
        return control
    return decode_encrypted_command(control, session).command


# --- fenc replies -------------------------------------------------------------------------------


def decrypt_fenc_reply(payload: str, session: SessionKey) -> str:
    """The JSON text of a ``fenc`` reply: its text frame is the whole reply, AES then Base64."""
    return _decrypt_text(payload, session, "fenc reply")


def encrypt_fenc_reply(json_text: str, session: SessionKey) -> str:
    """Simulator side: encrypt a whole JSON reply for a ``fenc`` command."""
    return aes_encrypt_b64(json_text, session)
