"""The idle CPU floor: a bare trio-websocket client that only receives a Miniserver's stream.

``python -m benchmarks._floor_client PORT [PORT ...]`` logs in to each simulated Miniserver
(the simulator's default user, plain ws://), enables the binary status updates, prints
``streaming`` once every session streams, and from then on does nothing but take each message
from trio-websocket (and send the keepalive every 30 s that keeps a Miniserver from closing a
silent client). Its CPU is what any trio program that reads the same stream with the same
WebSocket library must spend; the idle CPU budget is a multiple of it (design section 4).

The login uses the exporter's sans-IO ``ClientSession``: it happens before the measured window.
"""

from __future__ import annotations

import os
import sys
import uuid

import trio
import trio_websocket

from loxone_trio_exporter.protocol import SessionKey, parse_ll_reply
from loxone_trio_exporter.protocol._session import ClientSession, SendCommand, UpdatesEnabled
from loxone_trio_exporter.runtime._transport import http_get

HOST = "127.0.0.1"
USER = PASSWORD = "demo"  # noqa: S105 - the simulator's public demo user
KEEPALIVE_SECONDS = 30.0


async def _public_key(port: int) -> str:
    response = await http_get(HOST, port, "/jdev/sys/getPublicKey", timeout_seconds=30)
    key = parse_ll_reply(response.body).value
    assert isinstance(key, str), key
    return key


async def _stream(port: int, streaming: trio.Event) -> None:
    session = ClientSession(
        USER,
        PASSWORD,
        client_uuid=str(uuid.uuid4()),
        public_key_text=await _public_key(port),
        session_key=SessionKey(os.urandom(32), os.urandom(16)),
        salt=os.urandom(16).hex(),
    )
    async with trio_websocket.open_websocket(
        HOST,
        port,
        "/ws/rfc6455",
        use_ssl=False,
        subprotocols=["remotecontrol"],
        max_message_size=16 * 1024 * 1024,
    ) as ws:
        for command in session.start():
            await ws.send_message(command)
        while not streaming.is_set():
            for event in session.receive(await ws.get_message()):
                if isinstance(event, SendCommand):
                    await ws.send_message(event.text)
                elif isinstance(event, UpdatesEnabled):
                    streaming.set()
        keepalive = session.keepalive_command()
        while True:
            with trio.move_on_after(KEEPALIVE_SECONDS):
                while True:
                    await ws.get_message()
            await ws.send_message(keepalive)


async def _main(ports: list[int]) -> None:
    async with trio.open_nursery() as nursery:
        started = []
        for port in ports:
            event = trio.Event()
            started.append(event)
            nursery.start_soon(_stream, port, event)
        for event in started:
            await event.wait()
        print("streaming", flush=True)


if __name__ == "__main__":
    trio.run(_main, [int(port) for port in sys.argv[1:]])
