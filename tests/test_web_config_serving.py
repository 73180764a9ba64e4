"""A web config in force over real loopback sockets: HTTPS with client certificates, basic auth
(bcrypt off the event loop, cached), headers, and changes on disk picked up while serving."""

from __future__ import annotations

import base64
import logging
import os
import ssl
import textwrap
from functools import partial
from pathlib import Path

import attrs
import bcrypt
import h11
import pytest
import trio
from http_client import Response, http_request
from tls_material import Issued, issue, make_ca

from loxone_trio_exporter.web import MetricsBody, MiniserverView, create_app, serve_web
from loxone_trio_exporter.web._auth import REALM, BasicAuthChecker, protect
from loxone_trio_exporter.web._web_config import load_web_config
from loxone_trio_exporter.web._web_config_source import WebConfigSource

TIMEOUT_SECONDS = 10
PASSWORD = "s3cret-Passw0rd"
OTHER_PASSWORD = "0ther-Passw0rd"
FAST_HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
OTHER_FAST_HASH = bcrypt.hashpw(OTHER_PASSWORD.encode(), bcrypt.gensalt(4)).decode()


@attrs.define
class FixedSource:
    """A ``WebSource`` with fixed answers: only the web layer is under test."""

    async def render_metrics(self, accept, accept_encoding):
        return MetricsBody(b"up 1\n", "text/plain; version=0.0.4; charset=utf-8")

    def miniservers(self):
        return [MiniserverView("home", True, "streaming")]


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def write(path: Path, text: str) -> Path:
    """Write ``path`` so that its stamp surely changes (mtime may have coarse ticks)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(textwrap.dedent(text), "utf-8")
    if before:
        os.utime(path, ns=(before + 1_000_000_000, before + 1_000_000_000))
    return path


def basic(user: str, password: str) -> list[tuple[str, str]]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return [("Authorization", f"Basic {token}")]


async def start(nursery, app, web_config=None) -> tuple[int, str, trio.Event]:
    shutdown = trio.Event()
    urls = await nursery.start(
        partial(serve_web, app, ["127.0.0.1:0"], shutdown, web_config=web_config)
    )
    return int(urls[0].rsplit(":", 1)[1]), urls[0], shutdown


def exporter_app():
    return create_app(FixedSource())


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Issued]:
    directory = tmp_path / "certs"
    directory.mkdir()
    ca = make_ca(directory)
    stranger_ca = make_ca(directory, "stranger-ca")
    return {
        "ca": ca,
        "server": issue(directory, "server", ca, ip_addresses=("127.0.0.1",)),
        "client": issue(directory, "client", ca, dns_names=("scraper.test",), client=True),
        "other-client": issue(directory, "other-client", ca, dns_names=("x.test",), client=True),
        "stranger-ca": stranger_ca,
        "stranger": issue(
            directory, "stranger", stranger_ca, dns_names=("scraper.test",), client=True
        ),
    }


def client_context(
    pki, *, trust: str = "ca", certificate: str | None = None, maximum=None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=pki[trust].cert_file)
    if certificate is not None:
        context.load_cert_chain(pki[certificate].cert_file, pki[certificate].key_file)
    if maximum is not None:
        context.maximum_version = maximum
    return context


async def https_get(port: int, context: ssl.SSLContext, **kwargs) -> Response:
    with trio.fail_after(TIMEOUT_SECONDS):
        return await http_request(port, "/metrics", ssl_context=context, **kwargs)


async def refused(port: int, context: ssl.SSLContext) -> bool:
    """Whether the server ends the connection before answering (a failed TLS handshake)."""
    try:
        response = await https_get(port, context)
    except (trio.BrokenResourceError, h11.RemoteProtocolError):
        return True
    return response.status == 0


def tls_config(tmp_path: Path, extra: str = "") -> Path:
    text = "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n"
    return write(tmp_path / "web.yml", text + extra)


# --- TLS ---------------------------------------------------------------------------------------


async def test_https_with_the_configured_certificate(nursery, tmp_path, pki):
    port, url, shutdown = await start(
        nursery, exporter_app(), load_web_config(tls_config(tmp_path))
    )
    assert url.startswith("https://127.0.0.1:")
    response = await https_get(port, client_context(pki))
    assert (response.status, response.body) == (200, b"up 1\n")
    # A client that does not trust the CA refuses the certificate.
    assert await refused(port, client_context(pki, trust="stranger-ca"))
    shutdown.set()


async def handshake(port: int, context: ssl.SSLContext) -> trio.SSLStream[trio.SocketStream]:
    with trio.fail_after(TIMEOUT_SECONDS):
        tcp = await trio.open_tcp_stream("127.0.0.1", port)
        stream = trio.SSLStream(tcp, context, server_hostname="127.0.0.1")
        await stream.do_handshake()
        return stream


async def test_min_version_is_honoured(nursery, tmp_path, pki):
    config = load_web_config(tls_config(tmp_path, "  min_version: TLS13\n"))
    port, _, shutdown = await start(nursery, exporter_app(), config)
    assert await refused(port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2))
    stream = await handshake(port, client_context(pki))
    assert stream.version() == "TLSv1.3"
    await stream.aclose()
    shutdown.set()


async def test_tls12_is_served_by_default(nursery, tmp_path, pki):
    port, _, shutdown = await start(nursery, exporter_app(), load_web_config(tls_config(tmp_path)))
    stream = await handshake(port, client_context(pki, maximum=ssl.TLSVersion.TLSv1_2))
    assert stream.version() == "TLSv1.2"
    await stream.aclose()
    shutdown.set()


async def test_http2_is_offered_unless_switched_off(nursery, tmp_path, pki):
    for extra, expected in (("", "h2"), ("http_server_config: {http2: false}\n", "http/1.1")):
        config = load_web_config(tls_config(tmp_path, extra))
        port, _, shutdown = await start(nursery, exporter_app(), config)
        context = client_context(pki)
        context.set_alpn_protocols(["h2", "http/1.1"])
        stream = await handshake(port, context)
        assert stream.selected_alpn_protocol() == expected
        await stream.aclose()
        shutdown.set()


async def test_require_and_verify_client_cert(nursery, tmp_path, pki):
    extra = "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: certs/ca.crt\n"
    port, _, shutdown = await start(
        nursery, exporter_app(), load_web_config(tls_config(tmp_path, extra))
    )
    assert await refused(port, client_context(pki))  # no certificate
    assert await refused(port, client_context(pki, certificate="stranger"))  # another CA's
    response = await https_get(port, client_context(pki, certificate="client"))
    assert response.status == 200
    shutdown.set()


async def test_verify_client_cert_if_given(nursery, tmp_path, pki):
    extra = "  client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: certs/ca.crt\n"
    port, _, shutdown = await start(
        nursery, exporter_app(), load_web_config(tls_config(tmp_path, extra))
    )
    assert (await https_get(port, client_context(pki))).status == 200
    assert (await https_get(port, client_context(pki, certificate="client"))).status == 200
    assert await refused(port, client_context(pki, certificate="stranger"))
    shutdown.set()


async def test_client_allowed_sans(nursery, tmp_path, pki):
    extra = (
        "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: certs/ca.crt\n"
        "  client_allowed_sans: [scraper.test, 10.0.0.1]\n"
    )
    port, _, shutdown = await start(
        nursery, exporter_app(), load_web_config(tls_config(tmp_path, extra))
    )
    assert (await https_get(port, client_context(pki, certificate="client"))).status == 200
    assert await refused(port, client_context(pki, certificate="other-client"))
    shutdown.set()


async def test_new_connections_get_the_changed_certificate_and_settings(nursery, tmp_path, pki):
    path = tls_config(tmp_path)
    clock = ManualClock()
    source = WebConfigSource(path, clock=clock)
    port, _, shutdown = await start(nursery, exporter_app(), source)
    assert (await https_get(port, client_context(pki))).status == 200
    kept_open = await handshake(port, client_context(pki))
    # Renewal by a new CA, the way certbot and friends do it: new files renamed over the old.
    renewal = tmp_path / "renewal"
    renewal.mkdir()
    renewed = issue(renewal, "server", pki["stranger-ca"], ip_addresses=("127.0.0.1",))
    os.replace(renewed.cert_file, tmp_path / "certs" / "server.crt")
    os.replace(renewed.key_file, tmp_path / "certs" / "server.key")
    assert (await https_get(port, client_context(pki))).status == 200  # not looked at yet
    clock.now += 1.0
    assert await refused(port, client_context(pki))
    assert (await https_get(port, client_context(pki, trust="stranger-ca"))).status == 200
    # A TLS setting changed in the file applies to new connections too.
    tls_config(tmp_path, "  min_version: TLS13\n")
    clock.now += 1.0
    assert await refused(
        port, client_context(pki, trust="stranger-ca", maximum=ssl.TLSVersion.TLSv1_2)
    )
    # The connection made before the change is not disturbed.
    assert kept_open.getpeercert()["subject"] == ((("commonName", "server"),),)
    await kept_open.aclose()
    shutdown.set()


# --- basic auth and headers --------------------------------------------------------------------


def auth_config(tmp_path: Path, users: dict[str, str], headers: str = "") -> Path:
    lines = "".join(f"  {user}: {password_hash}\n" for user, password_hash in users.items())
    return write(tmp_path / "web.yml", f"basic_auth_users:\n{lines}{headers}")


HEADERS = """\
http_server_config:
  headers:
    X-Frame-Options: deny
    Content-Security-Policy: default-src 'none'
"""


async def protected_server(nursery, tmp_path, users, *, headers="", checker=None, clock=None):
    source = WebConfigSource(auth_config(tmp_path, users, headers), clock=clock or ManualClock())
    app = protect(exporter_app(), source, checker=checker)
    port, _, shutdown = await start(nursery, app)
    return port, shutdown


async def get(port: int, path: str = "/metrics", headers=None) -> Response:
    with trio.fail_after(TIMEOUT_SECONDS):
        return await http_request(port, path, headers=headers)


async def test_basic_auth_answers(nursery, tmp_path):
    checker = BasicAuthChecker()
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH}, headers=HEADERS, checker=checker
    )
    ok = await get(port, headers=basic("alice", PASSWORD))
    assert (ok.status, ok.body) == (200, b"up 1\n")
    for headers in (
        None,
        basic("alice", "wrong"),
        basic("mallory", PASSWORD),
        [("Authorization", "Basic !!!not-base64")],
        [("Authorization", "Basic " + base64.b64encode(b"no colon").decode())],
        [("Authorization", "Bearer " + base64.b64encode(b"alice:" + PASSWORD.encode()).decode())],
    ):
        refused_response = await get(port, headers=headers)
        assert refused_response.status == 401, headers
        assert refused_response.headers["www-authenticate"] == f'Basic realm="{REALM}"'
        assert refused_response.headers["x-frame-options"] == "deny"  # 401s carry them too
    # Every page is protected, as with the toolkit.
    assert (await get(port, "/-/healthy")).status == 401
    statistics = checker.statistics()
    # right, wrong and the unknown user (against the dummy hash) each ran bcrypt once.
    assert statistics.bcrypt_checks == 3
    shutdown.set()


async def test_configured_headers_are_on_every_response(nursery, tmp_path):
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH}, headers=HEADERS
    )
    for path, status in (("/metrics", 200), ("/", 200), ("/no-such-page", 404)):
        response = await get(port, path, headers=basic("alice", PASSWORD))
        assert response.status == status
        assert response.headers["x-frame-options"] == "deny"
        assert response.headers["content-security-policy"] == "default-src 'none'"
    shutdown.set()


async def test_successful_and_failed_checks_are_cached(nursery, tmp_path):
    checker = BasicAuthChecker()
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH}, checker=checker
    )
    for _ in range(3):
        assert (await get(port, headers=basic("alice", PASSWORD))).status == 200
    assert (checker.statistics().bcrypt_checks, checker.statistics().cache_hits) == (1, 2)
    for _ in range(2):
        assert (await get(port, headers=basic("alice", "wrong"))).status == 401
    # A repeated wrong password costs the flood no bcrypt run (tests/test_auth_flood.py).
    statistics = checker.statistics()
    assert (statistics.bcrypt_checks, statistics.cache_hits) == (2, 2)
    assert statistics.failure_cache_hits == 1
    shutdown.set()


async def test_bcrypt_runs_off_the_event_loop(nursery, tmp_path):
    """While one slow bcrypt check runs, a request with cached credentials is answered.

    Were bcrypt run on the event loop, nothing else could run during the check: the check would
    never be seen in progress, and the cached request would wait for it to end.
    """
    slow_hash = bcrypt.hashpw(OTHER_PASSWORD.encode(), bcrypt.gensalt(12)).decode()  # ~0.3 s
    checker = BasicAuthChecker()
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH, "bob": slow_hash}, checker=checker
    )
    assert (await get(port, headers=basic("alice", PASSWORD))).status == 200  # now cached
    slow_answer: list[int] = []

    async def slow_request() -> None:
        slow_answer.append((await get(port, headers=basic("bob", OTHER_PASSWORD))).status)

    async with trio.open_nursery() as requests:
        requests.start_soon(slow_request)
        with trio.fail_after(TIMEOUT_SECONDS):
            # Polled: the check runs in a worker thread, so virtual time cannot stand in here.
            while checker.statistics().bcrypt_checks_in_progress == 0:  # noqa: ASYNC110
                await trio.sleep(0.001)
        assert (await get(port, headers=basic("alice", PASSWORD))).status == 200
        statistics = checker.statistics()
        assert statistics.bcrypt_checks_in_progress == 1  # bob's check is still running
        assert statistics.cache_hits == 1
    assert slow_answer == [200]
    assert checker.statistics().bcrypt_checks == 2
    shutdown.set()


async def test_changed_users_apply_to_the_next_request(nursery, tmp_path):
    clock = ManualClock()
    port, shutdown = await protected_server(nursery, tmp_path, {"alice": FAST_HASH}, clock=clock)
    assert (await get(port, headers=basic("alice", PASSWORD))).status == 200
    auth_config(tmp_path, {"alice": OTHER_FAST_HASH})
    clock.now += 1.0
    # The cached success was for the old hash: it no longer counts.
    assert (await get(port, headers=basic("alice", PASSWORD))).status == 401
    assert (await get(port, headers=basic("alice", OTHER_PASSWORD))).status == 200
    # An invalid change keeps the config in force.
    write(tmp_path / "web.yml", "basic_auth_users: {alice: 'not a hash'}\n")
    clock.now += 1.0
    assert (await get(port, headers=basic("alice", OTHER_PASSWORD))).status == 200
    # Removing every user opens the door again, as in the toolkit.
    write(tmp_path / "web.yml", "")
    clock.now += 1.0
    assert (await get(port)).status == 200
    shutdown.set()


async def test_basic_auth_and_headers_over_https_through_serve_web(nursery, tmp_path, pki):
    path = tls_config(tmp_path, f"basic_auth_users:\n  alice: {FAST_HASH}\n{HEADERS}")
    port, _, shutdown = await start(nursery, exporter_app(), WebConfigSource(path))
    refused_response = await https_get(port, client_context(pki))
    assert refused_response.status == 401
    assert refused_response.headers["x-frame-options"] == "deny"
    ok = await https_get(port, client_context(pki), headers=basic("alice", PASSWORD))
    assert (ok.status, ok.headers["x-frame-options"]) == (200, "deny")
    shutdown.set()


async def test_no_password_or_hash_in_any_log_line(nursery, tmp_path, caplog):
    clock = ManualClock()
    caplog.set_level(logging.DEBUG)
    port, shutdown = await protected_server(nursery, tmp_path, {"alice": FAST_HASH}, clock=clock)
    for user, password in (("alice", PASSWORD), ("alice", OTHER_PASSWORD), ("bob", PASSWORD)):
        await get(port, headers=basic(user, password))
    # An invalid change whose broken line holds a hash, then one with a hash where a name goes.
    write(
        tmp_path / "web.yml",
        f"basic_auth_users:\n  alice: {FAST_HASH}\n  bob: '{OTHER_FAST_HASH}\n",
    )
    clock.now += 1.0
    await get(port)
    write(tmp_path / "web.yml", f"basic_auth_users:\n  {OTHER_FAST_HASH}: alice\n")
    clock.now += 1.0
    await get(port)
    shutdown.set()
    messages = [record.getMessage() + (record.exc_text or "") for record in caplog.records]
    assert any("keeping the previous one" in message for message in messages)
    assert any("refused" in message for message in messages)
    for message in messages:
        for secret in (PASSWORD, OTHER_PASSWORD, FAST_HASH, OTHER_FAST_HASH, FAST_HASH[7:]):
            assert secret not in message


# --- WebSocket upgrades ------------------------------------------------------------------------

UPGRADE_HEADERS = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
]


async def websocket_upgrade(port: int, headers=None) -> Response:
    """Send a real WebSocket upgrade request and read the HTTP answer to it."""
    connection = h11.Connection(h11.CLIENT)
    request = h11.Request(
        method="GET",
        target="/metrics",
        headers=[("Host", f"127.0.0.1:{port}"), *UPGRADE_HEADERS, *(headers or [])],
    )
    with trio.fail_after(TIMEOUT_SECONDS):
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(connection.send(request) + connection.send(h11.EndOfMessage()))
            status, response_headers, body = 0, {}, bytearray()
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    connection.receive_data(await stream.receive_some(65536))
                elif isinstance(event, h11.InformationalResponse):
                    raise AssertionError(f"the upgrade was accepted: {event}")
                elif isinstance(event, h11.Response):
                    status = event.status_code
                    response_headers = {k.decode(): v.decode() for k, v in event.headers}
                elif isinstance(event, h11.Data):
                    body += event.data
                elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                    return Response(status, response_headers, bytes(body))


async def test_websocket_upgrade_without_credentials_is_401_with_challenge(nursery, tmp_path):
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH}, headers=HEADERS
    )
    for headers in (None, basic("alice", "wrong")):
        response = await websocket_upgrade(port, headers)
        assert response.status == 401
        assert response.headers["www-authenticate"] == f'Basic realm="{REALM}"'
        assert response.headers["x-frame-options"] == "deny"
        assert response.headers["content-security-policy"] == "default-src 'none'"
        assert response.body == b"Unauthorized\n"
    shutdown.set()


async def test_websocket_upgrade_with_credentials_is_404_with_the_headers(nursery, tmp_path):
    port, shutdown = await protected_server(
        nursery, tmp_path, {"alice": FAST_HASH}, headers=HEADERS
    )
    response = await websocket_upgrade(port, basic("alice", PASSWORD))
    assert response.status == 404
    assert "www-authenticate" not in response.headers
    assert response.headers["x-frame-options"] == "deny"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert b"no WebSockets" in response.body
    shutdown.set()


async def test_websocket_upgrade_without_basic_auth_is_404_with_the_headers(nursery, tmp_path):
    source = WebConfigSource(write(tmp_path / "web.yml", HEADERS), clock=ManualClock())
    port, _, shutdown = await start(nursery, protect(exporter_app(), source))
    response = await websocket_upgrade(port)
    assert response.status == 404
    assert response.headers["x-frame-options"] == "deny"
    assert b"no WebSockets" in response.body
    shutdown.set()


async def test_websocket_refused_by_closing_when_the_server_lacks_the_extension(tmp_path):
    """A server without ``websocket.http.response`` can only refuse by closing before accept."""
    source = WebConfigSource(auth_config(tmp_path, {"alice": FAST_HASH}), clock=ManualClock())
    app = protect(exporter_app(), source)
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "websocket.connect"}

    async def send(message) -> None:
        sent.append(dict(message))

    scope = {"type": "websocket", "path": "/metrics", "headers": [], "client": ("127.0.0.1", 1)}
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
