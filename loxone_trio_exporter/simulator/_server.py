"""The simulated Miniservers: one TCP port each for HTTP and the WebSocket, as on the real one."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import math
import os
import ssl
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import trio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wsproto.events import Request as WsRequest
from wsproto.utilities import RemoteProtocolError as WsRemoteProtocolError

from ..protocol import (
    ApiKeyInfo,
    CloseCode,
    HashAlgorithm,
    MessageIdentifier,
    ResponseCode,
    decode_text_states,
    encode_api_key_value,
    encode_ll_reply,
    frame_binary_message,
    parse_ll_reply,
)
from ._accounts import Accounts, User
from ._faults import Fault, FaultError, FaultKind, parse_fault
from ._firmware import DEFAULT_FIRMWARE, Firmware
from ._generate import generate_structure
from ._http import HttpConnection, Request
from ._model import SimulatedMiniserver
from ._session import ServerSession
from ._tls import server_ssl_context, write_self_signed_certificate
from ._websocket import (
    GARBAGE_MESSAGE,
    WebSocketClient,
    new_server_websocket,
    out_of_service_header,
)

log = logging.getLogger(__name__)

WEBSOCKET_PATH = "/ws/rfc6455"


@attrs.frozen
class SimulatorOptions:
    """Everything ``simulate`` can be told; the defaults suit the demo."""

    host: str = "127.0.0.1"
    port: int = 8080  # 0 picks a free port per Miniserver (tests)
    structure: dict[str, Any] | None = None  # a LoxAPP3 document; None generates one
    controls: int = 60
    users: tuple[User, ...] = (User("demo", "demo", HashAlgorithm.SHA256),)
    rate: float = 20.0  # numeric state changes per second, per Miniserver
    seed: int = 0
    count: int = 1
    tls: bool = False
    tls_cert_file: Path | None = None
    # With tls: also plain HTTP/WS on ``port`` and HTTPS/WSS on this one, as a Gen 2 serves 80 and
    # 443 (0 picks a free port). None: TLS only, on ``port``.
    tls_port: int | None = None
    firmware_version: str = DEFAULT_FIRMWARE
    # False: apiKey leaves the version out and only jdev/cfg/version says it.
    version_in_api_key: bool = True
    omit_hash_alg: bool = False
    idle_timeout_seconds: float = 300.0  # a Miniserver closes clients silent for 5 minutes
    auth_timeout_seconds: float = 5.0  # "within the first few seconds" (protocol doc 5.1)
    max_event_clients: int = 31  # event slots of a real Miniserver
    tick_seconds: float = 0.02  # how often changed states are batched into a table
    wall_clock: Callable[[], float] = time.time


class SimulatedServer:
    """One simulated Miniserver: its data, accounts, clients and fault state."""

    def __init__(
        self,
        options: SimulatorOptions,
        *,
        index: int,
        private_key: rsa.RSAPrivateKey,
        ssl_context: ssl.SSLContext | None,
    ) -> None:
        self.options = options
        self.index = index
        self.model = _build_model(options, index)
        self.firmware = Firmware.of(options.firmware_version)
        self.accounts = Accounts(
            options.users, omit_hash_alg=options.omit_hash_alg or not self.firmware.hash_alg
        )
        self.private_key = private_key
        self.ssl_context = ssl_context
        self.public_key_value = _one_line_public_key(private_key)
        self.wall_clock = options.wall_clock
        self.port = 0
        self.tls_port: int | None = None  # the extra HTTPS/WSS port of a Gen 2 (``tls_port``)
        self.clients: set[WebSocketClient] = set()
        self.streaming_clients: set[WebSocketClient] = set()
        self.events_sent: Counter[str] = Counter()
        self.stalled_until = -math.inf
        self.booting_until = -math.inf
        self.tables_before_ack = False
        self.estimated_headers = False

    # --- state -----------------------------------------------------------------------------------

    @property
    def stalled(self) -> bool:
        return trio.current_time() < self.stalled_until

    @property
    def booting(self) -> bool:
        return trio.current_time() < self.booting_until

    @property
    def url(self) -> str:
        scheme = "https" if self.ssl_context and self.options.tls_port is None else "http"
        return f"{scheme}://{_url_host(self.options.host)}:{self.port}"

    def new_session(self, *, secure: bool) -> ServerSession:
        return ServerSession(
            accounts=self.accounts,
            miniserver=self.model,
            private_key=self.private_key,
            tls=secure,
            estimated_headers=self.estimated_headers,
            tables_before_ack=self.tables_before_ack,
            firmware=self.firmware,
        )

    def start_streaming(self, client: WebSocketClient) -> None:
        if len(self.streaming_clients) >= self.options.max_event_clients:
            client.close(CloseCode.NO_EVENT_SLOTS, "no free event slot")
            return
        self.streaming_clients.add(client)

    def stats(self) -> dict[str, Any]:
        return {
            "clients": len(self.clients),
            "streaming_clients": len(self.streaming_clients),
            "events_sent": dict(self.events_sent),
            "logins_ok": self.accounts.logins_ok,
            "logins_failed": self.accounts.logins_failed,
            "stalled": self.stalled,
            "booting": self.booting,
        }

    # --- connections -----------------------------------------------------------------------------

    async def handle_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one TCP connection on the main port (TLS only with ``--tls`` and no
        ``--tls-port``); nothing a client sends may take the server down."""
        secure = self.ssl_context is not None and self.options.tls_port is None
        await self._handle(stream, secure=secure)

    async def handle_tls_connection(self, stream: trio.abc.Stream) -> None:
        """Serve one TCP connection on the extra TLS port."""
        await self._handle(stream, secure=True)

    async def _handle(self, stream: trio.abc.Stream, *, secure: bool) -> None:
        if secure and self.ssl_context is not None:
            stream = trio.SSLStream(stream, self.ssl_context, server_side=True)
        try:
            await self._serve_connection(HttpConnection(stream))
        except (trio.BrokenResourceError, trio.ClosedResourceError, WsRemoteProtocolError):
            pass
        except Exception:  # one broken client must never stop the simulator
            log.exception("simulator: connection failed")
        finally:
            with trio.CancelScope(shield=True):
                await stream.aclose()

    async def _serve_connection(self, conn: HttpConnection) -> None:
        while True:
            request = await conn.next_request()
            if request is None:
                return
            if request.wants_websocket and conn.switching_protocols:
                await self._serve_websocket(conn, request)
                return
            await self._serve_http(conn, request)
            if not conn.keep_alive:
                return

    async def _serve_websocket(self, conn: HttpConnection, request: Request) -> None:
        if request.path != WEBSOCKET_PATH:
            await conn.respond(404, {"error": f"no WebSocket at {request.path}"}, close=True)
            return
        if self.booting:
            await conn.respond(503, "Miniserver is starting", content_type="text/plain")
            return
        ws = new_server_websocket()
        ws.initiate_upgrade_connection(request.header_list, request.target)
        if conn.trailing_data:
            ws.receive_data(conn.trailing_data)
        handshake = next((e for e in ws.events() if isinstance(e, WsRequest)), None)
        subprotocols = list(handshake.subprotocols) if handshake else []
        await WebSocketClient(self, conn.stream, ws).run(subprotocols)

    # --- HTTP ------------------------------------------------------------------------------------

    async def _serve_http(self, conn: HttpConnection, request: Request) -> None:
        path = request.path.rstrip("/")
        if path.startswith("/sim/"):
            await self._serve_control(conn, request, path)
            return
        if self.booting:
            await conn.respond(503, "Miniserver is starting", content_type="text/plain")
            return
        if request.method not in ("GET", "HEAD"):
            await conn.respond(405, {"error": "only GET"}, headers=[("Allow", "GET")])
            return
        if path in ("/jdev/cfg/apiKey", "/jdev/cfg/api"):
            value = encode_api_key_value(
                ApiKeyInfo(
                    serial=_colon_serial(self.model.serial),
                    version=self.firmware.version if self.options.version_in_api_key else "",
                    https_status=1 if self.ssl_context else None,
                    has_event_slots=len(self.streaming_clients) < self.options.max_event_clients,
                    local=True if self.firmware.local_flag else None,
                )
            )
            await conn.respond(200, encode_ll_reply(path[1:].replace("jdev", "dev", 1), value))
        elif path == "/jdev/cfg/version":
            body = encode_ll_reply("dev/cfg/version", self.firmware.version)
            await conn.respond(200, body)
        elif path == "/jdev/sys/getPublicKey":
            body = encode_ll_reply("dev/sys/getPublicKey", self.public_key_value)
            await conn.respond(200, body)
        elif path.lower() == "/data/loxapp3.json":
            await self._serve_structure(conn, request)
        else:
            command = path[1:]
            reply = self.accounts.http_command(command, self.wall_clock())
            if reply is None:
                control = command.replace("jdev", "dev", 1)
                await conn.respond(404, encode_ll_reply(control, "", ResponseCode.NOT_FOUND))
            else:
                # Over HTTP the Miniserver repeats a refusal in the status line.
                code = parse_ll_reply(reply).code
                await conn.respond(code if 400 <= code < 600 else 200, reply)

    async def _serve_structure(self, conn: HttpConnection, request: Request) -> None:
        credentials = request.basic_credentials()
        token = request.bearer_token()
        allowed = (credentials is not None and self.accounts.check_password(*credentials)) or (
            token is not None and self.accounts.token_valid(token, self.wall_clock())
        )
        if not allowed:
            await conn.respond(
                401,
                {"error": "authentication required"},
                headers=[("WWW-Authenticate", 'Basic realm="Loxone Miniserver"')],
            )
            return
        await conn.respond(200, self.model.structure_text())

    async def _serve_control(self, conn: HttpConnection, request: Request, path: str) -> None:
        if path == "/sim/values" and request.method == "GET":
            await conn.respond(200, self.model.values_snapshot())
        elif path == "/sim/stats" and request.method == "GET":
            await conn.respond(200, self.stats())
        elif path == "/sim/fault" and request.method == "POST":
            try:
                fault = parse_fault(json.loads(request.body or b"null"))
            except (ValueError, FaultError) as exc:
                await conn.respond(400, {"error": str(exc)})
                return
            self.inject(fault)
            await conn.respond(200, {"ok": True, "fault": attrs.asdict(fault)})
        else:
            await conn.respond(404, {"error": f"no control endpoint {request.method} {path}"})

    # --- faults ----------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        """Apply a fault to this Miniserver and its connected clients."""
        handlers: dict[FaultKind, Callable[[Fault, list[WebSocketClient]], None]] = {
            FaultKind.DROP: lambda _f, clients: self._abort(clients),
            FaultKind.OUT_OF_SERVICE: lambda _f, clients: self._out_of_service(clients),
            FaultKind.CLOSE: self._close,
            FaultKind.GARBAGE: self._garbage,
            FaultKind.STALL: self._stall,
            FaultKind.AUTH_FAIL: lambda f, _c: self.accounts.fail_next_logins(f.count),
            FaultKind.TOKEN_EXPIRE: lambda _f, _c: self.accounts.expire_all(),
            FaultKind.STRUCTURE_CHANGE: self._structure_change,
            FaultKind.BOOT: self._boot,
            FaultKind.TABLES_BEFORE_ACK: self._quirk,
            FaultKind.ESTIMATED_HEADERS: self._quirk,
            FaultKind.FLOOD: self._flood,
            FaultKind.CLEAR: self._clear,
        }
        handlers[fault.kind](fault, list(self.clients))
        log.info("simulator %s: fault %s injected", self.model.name, fault.kind.value)

    def _abort(self, clients: list[WebSocketClient]) -> None:
        for client in clients:
            client.abort()

    def _garbage(self, _fault: Fault, clients: list[WebSocketClient]) -> None:
        for client in clients:
            client.queue(GARBAGE_MESSAGE)

    def _close(self, fault: Fault, clients: list[WebSocketClient]) -> None:
        # 4003 carries the blocked seconds in parentheses; lxcommunicator parses "(NN)".
        reason = f"blocked ({int(fault.seconds)})" if fault.code == CloseCode.BLOCKED else ""
        for client in clients:
            client.close(fault.code, reason)

    def _stall(self, fault: Fault, _clients: list[WebSocketClient]) -> None:
        self.stalled_until = trio.current_time() + fault.seconds

    def _structure_change(self, _fault: Fault, clients: list[WebSocketClient]) -> None:
        self.model.change_structure(_loxone_time_text(self.wall_clock()))
        self._out_of_service(clients)  # a config upload restarts the Miniserver's program

    def _boot(self, fault: Fault, clients: list[WebSocketClient]) -> None:
        self.booting_until = trio.current_time() + fault.seconds
        self._abort(clients)  # a reboot cuts every connection

    def _quirk(self, fault: Fault, _clients: list[WebSocketClient]) -> None:
        # Quirks apply to sessions that start afterwards, as a firmware change would.
        if fault.kind is FaultKind.TABLES_BEFORE_ACK:
            self.tables_before_ack = fault.enabled
        else:
            self.estimated_headers = fault.enabled

    def _flood(self, fault: Fault, clients: list[WebSocketClient]) -> None:
        for client in clients:
            if client in self.streaming_clients:
                client.flood(fault.table, fault.size, fault.seconds)

    def _clear(self, _fault: Fault, clients: list[WebSocketClient]) -> None:
        self.stalled_until = self.booting_until = -math.inf
        for client in clients:
            client.stop_flood()

    def _out_of_service(self, clients: list[WebSocketClient]) -> None:
        for client in clients:
            client.queue(out_of_service_header())
            client.close(CloseCode.NORMAL, "out of service")

    # --- state changes ---------------------------------------------------------------------------

    async def run_broadcaster(self) -> None:
        """Advance the simulation and send the changes, batched per tick, to streaming clients."""
        tick = self.options.tick_seconds
        carry = 0.0
        deadline = trio.current_time()
        while True:
            deadline += tick
            now = trio.current_time()
            if deadline < now - 1.0:  # fell far behind (a suspended process): do not catch up
                deadline = now
            await trio.sleep_until(deadline)
            if not self.streaming_clients or self.stalled:
                continue
            carry += self.options.rate * tick
            count = int(carry)
            if count == 0:
                continue
            carry -= count
            self.broadcast(self.model.step(count), value_events=count)

    def broadcast(
        self, tables: list[tuple[MessageIdentifier, bytes]], *, value_events: int
    ) -> None:
        messages: list[bytes] = []
        for identifier, payload in tables:
            messages += frame_binary_message(identifier, payload)
            if identifier is MessageIdentifier.VALUE_STATES:
                self.events_sent["value"] += value_events
            elif identifier is MessageIdentifier.TEXT_STATES:
                self.events_sent["text"] += len(decode_text_states(payload))
        for client in list(self.streaming_clients):
            client.offer(messages)


@attrs.frozen
class SimulatorHandle:
    """What ``serve_simulator`` reports once every port is bound."""

    servers: tuple[SimulatedServer, ...]
    tls_cert_file: Path | None = None

    @property
    def ports(self) -> list[int]:
        return [server.port for server in self.servers]


async def serve_simulator(
    options: SimulatorOptions,
    *,
    task_status: trio.TaskStatus[SimulatorHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``options.count`` simulated Miniservers until cancelled.

    Use with ``await nursery.start(serve_simulator, options)``; the handle tells the ports.
    """
    # One RSA key for all simulated Miniservers: generating a 2048-bit key takes ~0.1 s, which
    # would make ``--count 100`` slow to start; clients cannot tell.
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    servers = tuple(
        SimulatedServer(options, index=i, private_key=private_key, ssl_context=None)
        for i in range(options.count)
    )
    ssl_context, cert_file = _tls_setup(options, [server.model.serial for server in servers])
    for server in servers:
        server.ssl_context = ssl_context
    async with trio.open_nursery() as nursery:
        for index, server in enumerate(servers):
            port = options.port + index if options.port else 0
            listeners = await trio.open_tcp_listeners(port, host=options.host)
            server.port = listeners[0].socket.getsockname()[1]
            nursery.start_soon(partial(trio.serve_listeners, server.handle_connection, listeners))
            if options.tls and options.tls_port is not None:
                tls_port = options.tls_port + index if options.tls_port else 0
                tls_listeners = await trio.open_tcp_listeners(tls_port, host=options.host)
                server.tls_port = tls_listeners[0].socket.getsockname()[1]
                serve_tls = partial(
                    trio.serve_listeners, server.handle_tls_connection, tls_listeners
                )
                nursery.start_soon(serve_tls)
            nursery.start_soon(server.run_broadcaster)
        task_status.started(SimulatorHandle(servers, cert_file))


def _build_model(options: SimulatorOptions, index: int) -> SimulatedMiniserver:
    """The data of Miniserver number ``index``: its own seed and, with ``--count``, serial."""
    seed = options.seed + index
    serial = f"504F94A{index + 1:05X}"
    if options.structure is None:
        name = "Simulator" if options.count == 1 else f"Simulator {index + 1}"
        document = generate_structure(options.controls, seed=seed, serial=serial, name=name)
        return SimulatedMiniserver(document, seed=seed)
    if options.count == 1:
        return SimulatedMiniserver.from_document(options.structure, seed=seed)
    document = json.loads(json.dumps(options.structure))
    if isinstance(document.get("msInfo"), dict):
        document["msInfo"]["serialNr"] = serial
    return SimulatedMiniserver(document, seed=seed)


def _tls_setup(
    options: SimulatorOptions, serials: list[str]
) -> tuple[ssl.SSLContext | None, Path | None]:
    if not options.tls:
        return None, None
    cert_file = options.tls_cert_file or Path(
        tempfile.gettempdir(), f"loxone-simulator-{os.getpid()}.pem"
    )
    key_file = cert_file.with_suffix(".key")
    write_self_signed_certificate(
        cert_file, key_file, serials=serials, now=datetime.datetime.now(datetime.UTC)
    )
    return server_ssl_context(cert_file, key_file), cert_file


def _one_line_public_key(private_key: rsa.RSAPrivateKey) -> str:
    """The public key the way getPublicKey serves it: SPKI, one line, labelled CERTIFICATE."""
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    body = base64.b64encode(der).decode("ascii")
    return f"-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE-----"


def _colon_serial(serial: str) -> str:
    """``504F94A00001`` -> ``50:4F:94:A0:00:01``, the form ``jdev/cfg/apiKey`` uses."""
    compact = serial.replace(":", "").upper()
    return ":".join(compact[i : i + 2] for i in range(0, len(compact), 2))


def _loxone_time_text(unix_seconds: float) -> str:
    return datetime.datetime.fromtimestamp(unix_seconds, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
