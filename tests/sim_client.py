"""A minimal Loxone client built only from the protocol layer, for driving the simulator.

It talks to a ``ServerSession`` directly (no sockets): ``SimClient.send`` hands a command to the
session, checks the framing of everything that comes back (each ``Send`` is exactly one header,
an optional exact header after an estimated one, and one payload of the announced length, §9c
item 4) and parses it with ``MessageReader``. The pieces (``check_send``, ``deterministic_random``,
``encrypt_for``…) are usable on their own, e.g. for end-to-end tests over a real socket.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from loxone_trio_exporter.protocol import (
    HEADER_SIZE,
    Event,
    HashAlgorithm,
    KeyInfo,
    LLReply,
    MessageIdentifier,
    MessageReader,
    SessionKey,
    TextReply,
    aes_decrypt_b64,
    credential_hash,
    decrypt_fenc_reply,
    encrypt_command,
    encrypt_session_key,
    getjwt_command,
    getkey2_command,
    parse_getkey2_value,
    parse_header,
    parse_ll_reply,
    token_hash,
)
from loxone_trio_exporter.simulator._session import (
    Close,
    Output,
    Send,
    ServerSession,
    StartStreaming,
)

Item = Event | Close | StartStreaming
TEXT_IDENTIFIERS = (MessageIdentifier.TEXT, MessageIdentifier.FILE)
NO_PAYLOAD = (MessageIdentifier.KEEPALIVE, MessageIdentifier.OUT_OF_SERVICE)


def deterministic_random(seed: str = "seed") -> Callable[[int], bytes]:
    """A reproducible stand-in for ``os.urandom``."""
    counter = itertools.count()

    def random_bytes(size: int) -> bytes:
        out = b""
        while len(out) < size:
            out += hashlib.sha256(f"{seed}:{next(counter)}".encode()).digest()
        return out[:size]

    return random_bytes


def check_send(send: Send) -> None:
    """Assert that one ``Send`` is one correctly framed Miniserver message (never joined)."""
    messages = list(send.messages)
    assert messages, "empty Send"
    first = messages.pop(0)
    assert isinstance(first, bytes), "a Send starts with a header"
    assert len(first) == HEADER_SIZE, "a Send starts with a header"
    header = parse_header(first)
    if header.estimated:
        exact = messages.pop(0)
        assert isinstance(exact, bytes), "the exact header follows an estimated one"
        assert len(exact) == HEADER_SIZE, "the exact header follows an estimated one"
        exact_header = parse_header(exact)
        assert not exact_header.estimated
        assert exact_header.identifier is header.identifier
        assert exact_header.length != header.length
        header = exact_header
    if header.identifier in NO_PAYLOAD or header.length == 0:
        assert not messages, f"{header.identifier.name} header must stand alone"
        return
    assert len(messages) == 1, "exactly one payload message follows the header"
    payload = messages[0]
    if header.identifier in TEXT_IDENTIFIERS and isinstance(payload, str):
        assert len(payload.encode("utf-8")) == header.length, "header length = UTF-8 bytes"
    else:
        assert header.identifier not in (MessageIdentifier.TEXT,), "text reply as binary frame"
        assert isinstance(payload, bytes)
        assert len(payload) == header.length


def read_outputs(reader: MessageReader, outputs: Iterable[Output]) -> list[Item]:
    """Check and parse the outputs of a session, in order."""
    items: list[Item] = []
    for output in outputs:
        if isinstance(output, Send):
            check_send(output)
            for message in output.messages:
                event = reader.receive(message)
                if event is not None:
                    items.append(event)
        else:
            items.append(output)
    return items


class SimClient:
    """One client connection to a ``ServerSession``."""

    def __init__(
        self,
        session: ServerSession,
        public_key: RSAPublicKey,
        *,
        seed: str = "client",
        now: float = 1_700_000_000.0,
    ) -> None:
        self.session = session
        self.public_key = public_key
        self.now = now
        self.reader = MessageReader()
        self.random = deterministic_random(seed)
        self.session_key: SessionKey | None = None
        self.salt: str | None = None
        self.one_time_key: str | None = None
        self.items: list[Item] = []

    def send(self, text: str) -> list[Item]:
        items = read_outputs(self.reader, self.session.receive(text, self.now))
        self.items.extend(items)
        return items

    def text_reply(self, text: str) -> TextReply:
        """Send ``text``; exactly one text reply must come back."""
        items = self.send(text)
        replies = [i for i in items if isinstance(i, TextReply)]
        assert len(replies) == 1, items
        return replies[0]

    def request(self, command: str, *, mode: str | None = None) -> LLReply:
        """Send ``command`` in clear (``mode=None``), ``"enc"`` or ``"fenc"``; the parsed reply."""
        if mode is None:
            reply = self.text_reply(command)
        else:
            reply = self.text_reply(self.encrypt(command, fenc=mode == "fenc"))
        if mode == "fenc":
            assert reply.reply is None, "a fenc reply is ciphertext, not JSON"
            assert self.session_key is not None
            return parse_ll_reply(decrypt_fenc_reply(reply.text, self.session_key))
        assert reply.reply is not None, reply.text
        return reply.reply

    # --- encryption ------------------------------------------------------------------------

    def keyexchange(self) -> LLReply:
        self.session_key = SessionKey(key=self.random(32), iv=self.random(16))
        self.salt = None
        encrypted = encrypt_session_key(self.public_key, self.session_key)
        reply = self.request(f"jdev/sys/keyexchange/{encrypted}")
        if reply.ok:
            assert isinstance(reply.value, str)
            self.one_time_key = aes_decrypt_b64(reply.value, self.session_key)
        return reply

    def new_salt(self) -> str:
        return self.random(2).hex()

    def encrypt(self, command: str, *, fenc: bool = False, rotate: bool = False) -> str:
        """``enc``/``fenc`` with the current salt (a fresh one first; ``rotate``: nextSalt)."""
        assert self.session_key is not None, "keyexchange first"
        next_salt = None
        if self.salt is None:
            self.salt = self.new_salt()
        elif rotate:
            next_salt = self.new_salt()
        cipher = encrypt_command(
            command, self.session_key, self.salt, next_salt=next_salt, encrypt_response=fenc
        )
        if next_salt is not None:
            self.salt = next_salt
        return cipher

    # --- authentication --------------------------------------------------------------------

    def getkey2(self, user: str, *, mode: str | None = "enc") -> KeyInfo:
        reply = self.request(getkey2_command(user), mode=mode)
        assert reply.ok, reply
        info = parse_getkey2_value(reply.value)
        self.one_time_key = info.key_hex
        return info

    def getjwt(
        self,
        user: str,
        password: str,
        *,
        mode: str | None = "enc",
        algorithm: HashAlgorithm | None = None,
        permission: int = 4,
    ) -> LLReply:
        """getkey2, then getjwt with the hash of ``algorithm`` (default: the one announced)."""
        info = self.getkey2(user, mode=mode)
        alg = algorithm or info.hash_algorithm
        hash_hex = credential_hash(user, password, info.key_hex, info.salt, alg)
        command = getjwt_command(
            hash_hex, user, permission, "098802e1-02b4-603c-ffffeee000d80cfd", "sim test"
        )
        return self.request(command, mode=mode)

    def token_hash(self, token: str, algorithm: HashAlgorithm, key: str | None = None) -> str:
        key = key or self.one_time_key
        assert key is not None
        return token_hash(token, key, algorithm)
