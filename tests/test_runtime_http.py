from __future__ import annotations

import ssl

import pytest
import trio

from loxone_trio_exporter.errors import UnavailableError
from loxone_trio_exporter.protocol import parse_api_key_value, parse_ll_reply
from loxone_trio_exporter.runtime._transport import http_get
from loxone_trio_exporter.simulator import SimulatorOptions, serve_simulator


async def test_api_key_from_the_simulator(nursery):
    handle = await nursery.start(serve_simulator, SimulatorOptions(port=0, controls=13))
    response = await http_get("127.0.0.1", handle.ports[0], "/jdev/cfg/apiKey", timeout_seconds=5)
    assert response.status == 200
    info = parse_api_key_value(parse_ll_reply(response.body).value)
    assert info.version


async def test_a_certificate_problem_is_said_at_once_in_plain_words(nursery, tmp_path):
    options = SimulatorOptions(port=0, controls=13, tls=True, tls_cert_file=tmp_path / "c.pem")
    handle = await nursery.start(serve_simulator, options)
    context = ssl.create_default_context()  # does not know the self-signed certificate
    started = trio.current_time()
    with pytest.raises(UnavailableError, match=r"TLS certificate of 127\.0\.0\.1:\d+ not accepted"):
        await http_get(
            "127.0.0.1",
            handle.ports[0],
            "/jdev/cfg/apiKey",
            timeout_seconds=30,
            ssl_context=context,
        )
    assert trio.current_time() - started < 5  # not a timeout
    pinned = ssl.create_default_context(cafile=str(tmp_path / "c.pem"))
    response = await http_get(
        "127.0.0.1", handle.ports[0], "/jdev/cfg/apiKey", timeout_seconds=5, ssl_context=pinned
    )
    assert response.status == 200


async def test_refused_connection():
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    await listeners[0].aclose()
    with pytest.raises(UnavailableError, match=f"cannot connect to 127.0.0.1:{port}"):
        await http_get("127.0.0.1", port, "/jdev/cfg/apiKey", timeout_seconds=5)


async def test_a_peer_that_accepts_and_stays_silent_times_out(nursery, autojump_clock):
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]

    async def silent(stream):
        await trio.sleep_forever()

    nursery.start_soon(trio.serve_listeners, silent, listeners)
    with pytest.raises(UnavailableError, match=r"no answer from \S+ within 7 s"):
        await http_get("127.0.0.1", port, "/jdev/cfg/apiKey", timeout_seconds=7)
