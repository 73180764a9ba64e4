"""What a ``ServerSession`` asks its server to do, and how replies are framed on the wire.

Every reply is one 8-byte header message followed by one payload message, never joined (§9c
item 4): a text reply is a header with identifier 0 and then a text frame, the header announcing
the payload's UTF-8 length.
"""

from __future__ import annotations

import enum

import attrs

from ..protocol import (
    MessageIdentifier,
    ResponseCode,
    SessionKey,
    build_header,
    encode_ll_reply,
    encrypt_fenc_reply,
    frame_binary_message,
    frame_text_message,
)


@attrs.frozen
class Send:
    """Send these WebSocket messages in order: ``bytes`` as binary, ``str`` as text frames."""

    messages: tuple[bytes | str, ...]


@attrs.frozen
class Close:
    """Close the WebSocket with this code and reason (after sending what came before)."""

    code: int
    reason: str


@attrs.frozen
class StartStreaming:
    """Add this client to the broadcast of delta tables (after the full tables were sent)."""


Output = Send | Close | StartStreaming


class CodeStyle(enum.Enum):
    """How a reply spells its status, as real firmware does for each kind of command (§5.6)."""

    COMMAND = "command"  # "Code": "200" - normal commands and keyexchange (§9c item 3)
    KEY = "key"  # "code": 200 - getkey, getkey2, getjwt, gettoken (real captures, §8.4)
    AUTH = "auth"  # "code": "200" - token commands and every refused auth (LJV 401 capture)


def ll_text(control: str, value: object, code: int, style: CodeStyle) -> str:
    """The JSON of one LL reply."""
    if style is CodeStyle.COMMAND:
        return encode_ll_reply(control, value, code)
    return encode_ll_reply(
        control, value, code, code_key="code", code_as_string=style is CodeStyle.AUTH
    )


def text_message(text: str) -> Send:
    """A text reply: header (identifier 0, UTF-8 length), then the text frame."""
    return Send(tuple(frame_text_message(MessageIdentifier.TEXT, _clean(text))))


def file_message(text: str, *, estimated: bool) -> Send:
    """A text file (LoxAPP3.json): header with identifier 1, then a text frame (§9c item 10).

    ``estimated``: an estimated header of a different (larger) length goes first, as Gateway
    Miniservers do (§2.1); the exact header follows it.
    """
    text = _clean(text)
    length = len(text.encode("utf-8"))
    estimate = length + length // 16 + 1 if estimated else None
    return Send(tuple(frame_text_message(MessageIdentifier.FILE, text, estimated_length=estimate)))


def binary_message(identifier: MessageIdentifier, payload: bytes) -> Send:
    """A binary payload (an event table): header, then the payload (nothing if it is empty)."""
    return Send(tuple(frame_binary_message(identifier, payload)))


def keepalive_message() -> Send:
    """The answer to ``keepalive``: a header with identifier 6 and nothing else (§9c item 6)."""
    return Send((build_header(MessageIdentifier.KEEPALIVE, 0),))


@attrs.frozen
class ReplyRoute:
    """How to answer one command: which ``control`` to echo and whether to encrypt the reply.

    ``fenc`` is the session key when the command came as ``fenc``: the whole JSON reply is then
    AES-encrypted and Base64-encoded into the text frame (§9c item 8).
    """

    control: str
    encrypted: bool = False
    fenc: SessionKey | None = attrs.field(default=None, repr=False)

    def reply(self, value: object, code: int = ResponseCode.OK, *, style: CodeStyle) -> Send:
        text = ll_text(self.control, value, code, style)
        if self.fenc is not None:
            text = encrypt_fenc_reply(_clean(text), self.fenc)
        return text_message(text)


def echo(command: str) -> str:
    """The ``control`` echo of a command in clear: ``jdev/`` becomes ``dev/`` ([DOC])."""
    return command[1:] if command.startswith("jdev/") else command


def _clean(text: str) -> str:
    # A WebSocket text frame must be valid UTF-8; an echo could carry lone surrogates only if a
    # caller handed us such a str, but never let that turn into an exception while sending.
    return text.encode("utf-8", "replace").decode("utf-8")
