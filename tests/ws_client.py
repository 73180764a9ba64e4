"""A minimal Loxone client built only from the protocol layer, for driving the simulator.

It is deliberately small and explicit: each step of the documented login is one method, so a test
can also take a wrong step (a bad hash, a stale salt, an unencrypted getjwt) and see the refusal.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
import trio_websocket

from loxone_trio_exporter.protocol import (
    Event,
    HashAlgorithm,
    LLReply,
    MessageReader,
    SessionKey,
    TextReply,
    TokenInfo,
    authwithtoken_command,
    credential_hash,
    decrypt_fenc_reply,
    encrypt_command,
    encrypt_session_key,
    getjwt_command,
    getkey2_command,
    keyexchange_command,
    load_public_key,
    parse_getkey2_value,
    parse_ll_reply,
    parse_token_value,
    token_hash,
)

MAX_MESSAGE_SIZE = 16 * 1024 * 1024
CLIENT_UUID = "098802e1-02b4-603c-ffffeee000d80cfd"


class LoxoneTestClient:
    def __init__(self, ws: trio_websocket.WebSocketConnection) -> None:
        self.ws = ws
        self.reader = MessageReader()
        self.other_events: list[Event] = []
        self.session_key: SessionKey | None = None
        self.salt = os.urandom(2).hex()
        self.hash_algorithm = HashAlgorithm.SHA1

    async def next_event(self) -> Event:
        while True:
            event = self.reader.receive(await self.ws.get_message())
            if event is not None:
                return event

    async def reply(self) -> LLReply:
        """The next text reply (decrypting a fenc one); other events are kept in order."""
        while True:
            event = await self.next_event()
            if isinstance(event, TextReply):
                text = event.text
                if event.reply is None and self.session_key is not None:
                    text = decrypt_fenc_reply(text, self.session_key)
                return parse_ll_reply(text)
            self.other_events.append(event)

    async def request(self, command: str) -> LLReply:
        await self.ws.send_message(command)
        return await self.reply()

    def encrypted(self, command: str, *, fenc: bool = False) -> str:
        assert self.session_key is not None, "key_exchange first"
        return encrypt_command(command, self.session_key, self.salt, encrypt_response=fenc)

    async def key_exchange(self, public_key_text: str) -> LLReply:
        self.session_key = SessionKey(key=os.urandom(32), iv=os.urandom(16))
        cipher = encrypt_session_key(load_public_key(public_key_text), self.session_key)
        return await self.request(keyexchange_command(cipher))

    async def get_token(
        self, user: str, password: str, *, encrypt: bool = True, fenc: bool = False
    ) -> tuple[LLReply, TokenInfo | None]:
        """getkey2 then getjwt, each encrypted unless told otherwise."""
        wrap = (lambda c: self.encrypted(c, fenc=fenc)) if encrypt else (lambda c: c)
        key_reply = await self.request(wrap(getkey2_command(user)))
        assert key_reply.ok, key_reply
        key = parse_getkey2_value(key_reply.value)
        self.hash_algorithm = key.hash_algorithm
        hashed = credential_hash(user, password, key.key_hex, key.salt, key.hash_algorithm)
        reply = await self.request(wrap(getjwt_command(hashed, user, 4, CLIENT_UUID, "tests")))
        return reply, parse_token_value(reply.value) if reply.ok else None

    async def auth_with_token(self, user: str, token: str) -> LLReply:
        key_reply = await self.request(self.encrypted(getkey2_command(user)))
        key = parse_getkey2_value(key_reply.value)
        hashed = token_hash(token, key.key_hex, key.hash_algorithm)
        return await self.request(self.encrypted(authwithtoken_command(hashed, user)))


@asynccontextmanager
async def open_client(
    port: int,
    *,
    subprotocols: list[str] | None = None,
    host: str = "127.0.0.1",
    ssl_context: ssl.SSLContext | None = None,
) -> AsyncIterator[LoxoneTestClient]:
    """Connect as the exporter will: our own TCP/TLS stream, wrapped by trio-websocket.

    trio-websocket's own ``open_websocket`` leaves the socket unclosed when the peer closes
    (stack notes, pitfall 2), so the stream is opened and always closed here.
    """
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    if ssl_context is not None:
        stream = trio.SSLStream(stream, ssl_context, server_hostname=host)
    try:
        async with trio.open_nursery() as nursery:
            ws = await trio_websocket.wrap_client_stream(
                nursery,
                stream,
                host,
                "/ws/rfc6455",
                subprotocols=["remotecontrol"] if subprotocols is None else subprotocols,
                max_message_size=MAX_MESSAGE_SIZE,
                message_queue_size=10_000,
            )
            try:
                yield LoxoneTestClient(ws)
            finally:
                await ws.aclose()
                nursery.cancel_scope.cancel()
    finally:
        await stream.aclose()
