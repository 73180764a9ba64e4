"""Basic auth and the configured response headers, as an ASGI wrapper (exporter-toolkit rules).

- Each request is judged by the web config in force at that moment (``WebConfigProvider``), so a
  changed ``basic_auth_users`` applies from the next request on.
- bcrypt costs 70-350 ms of CPU per check (stack notes, pitfall 9): it runs in worker threads,
  at most ``BCRYPT_THREADS`` checks at once, while the event loop goes on serving.
- Every answer bcrypt gave is cached under an HMAC (with a key made at start) of user, password
  and hash: successes and failures in two separate bounded LRUs, so a flood of wrong passwords
  cannot push a scraper's success out. A changed hash changes the key, so it misses both caches;
  nothing in a cache gives a password back.
- Concurrent checks of the same credentials share one bcrypt run: 300 clients sending the same
  wrong password cost one check, not 300.
- A wrong credential costs the flood, not the valid users: checks wait for a bcrypt thread in
  order of arrival, but a check from a connection (remote address and port) that failed lately
  queues as if it had come ``FAILED_CONNECTION_PENALTY`` checks later, and one from an address
  that failed lately as many again. So connections that keep sending wrong passwords queue
  behind a scraper whose connection never failed, and new connections from a failing address
  behind a scraper on another address, as long as the flood has fewer checks waiting than the
  penalty. A penalty, not a tier: a scraper taken for a flood (a new connection that reuses the
  port of one that failed, as ports are reused) waits longer, but is never starved.
  What this cannot do: a flood that opens a new connection per attempt from the scraper's own
  address (loopback, a shared NAT) looks like the scraper, whose uncached check then waits its
  turn among the flood's (docs/benchmarks.md, "Auth flood").
- An unknown user is checked against a dummy hash of the same cost as the configured ones, so the
  time an answer takes does not tell whether a user exists. The failure cache keeps that: it
  holds unknown users' failures exactly as it holds known users' (keyed by the dummy hash), so a
  repeated wrong credential is answered fast in both cases, and that fast answer only says what
  the first, slow one said already. (It can also say that someone else tried exactly this user
  and password lately; only to whoever already sends that very pair.) The queue order depends on
  the client's history, never on the user.
- A WebSocket upgrade is refused with an HTTP answer (the exporter serves no WebSockets): 401 with
  the challenge when credentials are required and missing or wrong, else 404, each with the
  configured headers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import itertools
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager

import attrs
import bcrypt
import trio

from ..logs import WEB_LOGGER
from ._asgi import AsgiApp, Message, Receive, Scope, Send
from ._web_config import WebConfigFile
from ._web_config_source import WebConfigProvider

log = logging.getLogger(WEB_LOGGER)

REALM = "loxone-trio-exporter"
CHALLENGE = f'Basic realm="{REALM}"'.encode("ascii")
#: Distinct successful credentials remembered; the least recently used one goes first.
CACHE_SIZE = 100
#: Distinct failed credentials remembered (32-byte keys: about 100 kB at most).
FAILURE_CACHE_SIZE = 1000
#: Connections and addresses whose recent failures are remembered for the queue order. Not more:
#: a new connection that reuses a remembered port would be taken for the one that failed.
FAILURE_HISTORY_SIZE = 1024
#: How many checks later than its arrival a check from a connection that failed lately queues;
#: one from an address that failed lately, as many again. Above the queue a flood of hundreds of
#: clients builds, so all of it waits behind a scraper that did not fail.
FAILED_CONNECTION_PENALTY = 1000
FAILED_ADDRESS_PENALTY = 1000
#: bcrypt checks that run at once. Two use both cores of the small machines this runs on; more
#: would only take CPU from the event loop and make every check slower.
BCRYPT_THREADS = 2
#: bcrypt reads only this much of a password; Go's bcrypt ignores the rest, and so do we
#: (the bcrypt package for Python refuses longer input instead).
BCRYPT_PASSWORD_BYTES = 72
_DUMMY_DIGEST = b"." * 31  # any 31 characters: with a real salt it is a hash nothing matches
_UNAUTHORIZED_BODY = b"Unauthorized\n"
_NO_WEBSOCKETS_BODY = b"Not Found: this exporter serves no WebSockets\n"
_WEBSOCKET_HTTP_RESPONSE = "websocket.http.response"
_POLICY_VIOLATION = 1008  # WebSocket close code (RFC 6455, 7.4.1)

#: Who sent a request: ``scope["client"]``, the remote address and port of the connection.
ClientAddress = tuple[str, int]


@attrs.frozen
class BasicAuthStatistics:
    """``bcrypt_checks``: checks that ran bcrypt; ``bcrypt_checks_in_progress``: running or
    waiting for a worker thread now; ``cache_hits``: successes answered from the cache;
    ``failure_cache_hits``: failures answered from the cache; ``shared_checks``: checks answered
    by an identical check that was already running."""

    bcrypt_checks: int
    bcrypt_checks_in_progress: int
    cache_hits: int
    failure_cache_hits: int = 0
    shared_checks: int = 0


class _LruSet:
    """A set that forgets its least recently used key beyond ``size``."""

    def __init__(self, size: int) -> None:
        self._keys: OrderedDict[Hashable, None] = OrderedDict()
        self._size = size

    def __len__(self) -> int:
        return len(self._keys)

    def touch(self, key: Hashable) -> bool:
        """Whether ``key`` is held; if so it becomes the most recently used."""
        if key not in self._keys:
            return False
        self._keys.move_to_end(key)
        return True

    def add(self, key: Hashable) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        if len(self._keys) > self._size:
            self._keys.popitem(last=False)

    def discard(self, key: Hashable) -> None:
        self._keys.pop(key, None)


class _FailureHistory:
    """Which connections and addresses sent wrong credentials lately, for the queue order.

    A success clears both: a scraper that once had a wrong password is not held back for ever.
    """

    def __init__(self, size: int = FAILURE_HISTORY_SIZE) -> None:
        self._connections = _LruSet(size)
        self._addresses = _LruSet(size)

    def penalty(self, client: ClientAddress | None) -> int:
        """How many checks later than its arrival a check from ``client`` queues."""
        if client is None:
            return 0
        # Both count: on one address (loopback, a NAT) a flooding connection must still queue
        # behind a scraper's connection that never failed.
        penalty = FAILED_CONNECTION_PENALTY if self._connections.touch(client) else 0
        return penalty + (FAILED_ADDRESS_PENALTY if self._addresses.touch(client[0]) else 0)

    def record(self, client: ClientAddress | None, success: bool) -> None:
        if client is None:
            return
        if success:
            self._connections.discard(client)
            self._addresses.discard(client[0])
        else:
            self._connections.add(client)
            self._addresses.add(client[0])


@attrs.define
class _Ticket:
    granted: trio.Event = attrs.Factory(trio.Event)
    abandoned: bool = False


class _PenaltyLimiter:
    """Up to ``slots`` holders at once; waiters get a slot in order of arrival, each as if it had
    arrived ``penalty`` arrivals later than it did (so none waits for ever)."""

    def __init__(self, slots: int) -> None:
        self._free_slots = slots
        self._waiting: list[tuple[int, int, _Ticket]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def slot(self, penalty: int = 0) -> AsyncIterator[None]:
        await self._acquire(penalty)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, penalty: int) -> None:
        ticket = _Ticket()
        arrival = next(self._arrivals)
        heapq.heappush(self._waiting, (arrival + penalty, arrival, ticket))
        self._hand_out_free_slots()
        try:
            await ticket.granted.wait()
        except BaseException:
            if ticket.granted.is_set():
                self._release()  # handed a slot, but cancelled before it could use it
            else:
                ticket.abandoned = True  # skipped when its turn comes
            raise

    def _release(self) -> None:
        self._free_slots += 1
        self._hand_out_free_slots()

    def _hand_out_free_slots(self) -> None:
        while self._free_slots and self._waiting:
            _, _, ticket = heapq.heappop(self._waiting)
            if not ticket.abandoned:
                self._free_slots -= 1
                ticket.granted.set()


@attrs.define
class _SharedCheck:
    """One bcrypt run that identical concurrent checks wait for."""

    done: trio.Event = attrs.Factory(trio.Event)
    #: ``None`` when the run ended without an answer (cancelled while it waited for a thread).
    matches: bool | None = None


class BasicAuthChecker:
    """Checks user and password against a web config's bcrypt hashes; see the module notes."""

    def __init__(
        self,
        *,
        cache_size: int = CACHE_SIZE,
        failure_cache_size: int = FAILURE_CACHE_SIZE,
        bcrypt_threads: int = BCRYPT_THREADS,
    ) -> None:
        self._successes = _LruSet(cache_size)
        self._failures = _LruSet(failure_cache_size)
        self._cache_key_secret = secrets.token_bytes(32)
        self._dummy_hashes: dict[int, bytes] = {}
        self._running: dict[bytes, _SharedCheck] = {}
        self._history = _FailureHistory()
        self._bcrypt_limiter = _PenaltyLimiter(bcrypt_threads)
        self._bcrypt_checks = 0
        self._bcrypt_checks_in_progress = 0
        self._cache_hits = 0
        self._failure_cache_hits = 0
        self._shared_checks = 0

    async def check(
        self,
        config: WebConfigFile,
        user: str,
        password: bytes,
        *,
        client: ClientAddress | None = None,
    ) -> bool:
        """Whether ``user`` and ``password`` match; ``client`` (remote address and port) only
        decides how long the check may wait behind others."""
        known_hash = config.bcrypt_hash_of(user)
        hash_to_check = known_hash or self._dummy_hash(config.highest_bcrypt_cost)
        cache_key = self._cache_key(user, password, hash_to_check)
        matches = self._cached_answer(cache_key)
        if matches is None:
            matches = await self._bcrypt_once(cache_key, password, hash_to_check, client)
        # The dummy hash matches nothing, but say so here rather than trust that.
        success = matches and known_hash is not None
        self._history.record(client, success)
        return success

    def statistics(self) -> BasicAuthStatistics:
        return BasicAuthStatistics(
            bcrypt_checks=self._bcrypt_checks,
            bcrypt_checks_in_progress=self._bcrypt_checks_in_progress,
            cache_hits=self._cache_hits,
            failure_cache_hits=self._failure_cache_hits,
            shared_checks=self._shared_checks,
        )

    def _cached_answer(self, cache_key: bytes) -> bool | None:
        if self._successes.touch(cache_key):
            self._cache_hits += 1
            return True
        if self._failures.touch(cache_key):
            self._failure_cache_hits += 1
            return False
        return None

    async def _bcrypt_once(
        self, cache_key: bytes, password: bytes, bcrypt_hash: bytes, client: ClientAddress | None
    ) -> bool:
        while True:
            shared = self._running.get(cache_key)
            if shared is None:
                return await self._run_bcrypt(cache_key, password, bcrypt_hash, client)
            self._shared_checks += 1
            await shared.done.wait()
            if shared.matches is not None:
                return shared.matches
            # The run we waited for was cancelled before it had a thread: run it ourselves.

    async def _run_bcrypt(
        self, cache_key: bytes, password: bytes, bcrypt_hash: bytes, client: ClientAddress | None
    ) -> bool:
        shared = self._running[cache_key] = _SharedCheck()
        self._bcrypt_checks_in_progress += 1
        try:
            async with self._bcrypt_limiter.slot(self._history.penalty(client)):
                # Not cancellable once the thread runs: the slot stays taken while it does.
                matches = await trio.to_thread.run_sync(
                    bcrypt.checkpw, password[:BCRYPT_PASSWORD_BYTES], bcrypt_hash
                )
                self._bcrypt_checks += 1
                # Cached before the waiters wake, so none of them runs bcrypt again.
                (self._successes if matches else self._failures).add(cache_key)
                shared.matches = matches
            return matches
        finally:
            self._bcrypt_checks_in_progress -= 1
            del self._running[cache_key]
            shared.done.set()

    def _cache_key(self, user: str, password: bytes, bcrypt_hash: bytes) -> bytes:
        mac = hmac.new(self._cache_key_secret, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8"), password, bcrypt_hash):
            mac.update(len(part).to_bytes(4, "big"))  # lengths first: parts cannot run together
            mac.update(part)
        return mac.digest()

    def _dummy_hash(self, cost: int) -> bytes:
        # A fresh salt costs nothing (no hashing), and checking against it costs what a real
        # hash of this cost does.
        if cost not in self._dummy_hashes:
            self._dummy_hashes[cost] = bcrypt.gensalt(rounds=cost) + _DUMMY_DIGEST
        return self._dummy_hashes[cost]


def protect(
    app: AsgiApp, source: WebConfigProvider, *, checker: BasicAuthChecker | None = None
) -> AsgiApp:
    """Wrap ``app``: basic auth when the config in force has users, and its headers on every
    response (401s included); every WebSocket upgrade refused with an HTTP answer. ``lifespan``
    events pass straight through."""
    auth_checker = checker if checker is not None else BasicAuthChecker()

    async def protected(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        config = source.current()
        extra_headers = [
            (name.lower().encode("ascii"), value.encode("ascii")) for name, value in config.headers
        ]
        authorized = not config.basic_auth_users or await _authorized(scope, config, auth_checker)
        if scope["type"] == "websocket":
            await _refuse_websocket(scope, receive, send, extra_headers, authorized=authorized)
        elif not authorized:
            log.debug("refused %s %s: no or wrong credentials", scope.get("method"), scope["path"])
            await _refuse(send, extra_headers)
        else:
            await app(scope, receive, _adding_headers(send, extra_headers))

    return protected


async def _authorized(scope: Scope, config: WebConfigFile, checker: BasicAuthChecker) -> bool:
    for name, value in scope["headers"]:
        if bytes(name).lower() == b"authorization":
            credentials = basic_credentials(bytes(value))
            if credentials is None:
                return False
            return await checker.check(config, *credentials, client=_client_address(scope))
    return False


def _client_address(scope: Scope) -> ClientAddress | None:
    client = scope.get("client")
    if not client:
        return None  # e.g. a Unix socket: no address to remember failures by
    host, port = client
    return (str(host), int(port))


def basic_credentials(authorization: bytes) -> tuple[str, bytes] | None:
    """User and password from an ``Authorization: Basic ...`` value; ``None`` if it is not one."""
    scheme, _, encoded = authorization.strip().partition(b" ")
    if scheme.lower() != b"basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        return None
    user, colon, password = decoded.partition(b":")
    if not colon:
        return None
    try:
        return user.decode("utf-8"), password
    except UnicodeDecodeError:
        return None


def _unauthorized_headers(extra_headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return _text_headers(_UNAUTHORIZED_BODY, [(b"www-authenticate", CHALLENGE), *extra_headers])


def _text_headers(
    body: bytes, more_headers: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    return [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        *more_headers,
    ]


async def _refuse(send: Send, extra_headers: list[tuple[bytes, bytes]]) -> None:
    headers = _unauthorized_headers(extra_headers)
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAUTHORIZED_BODY})


async def _refuse_websocket(
    scope: Scope,
    receive: Receive,
    send: Send,
    extra_headers: list[tuple[bytes, bytes]],
    *,
    authorized: bool,
) -> None:
    """Answer an upgrade with an HTTP response: 401 and the challenge when credentials are
    missing or wrong, else 404 (the exporter serves no WebSockets)."""
    await receive()  # websocket.connect: ASGI wants it received before the answer
    if _WEBSOCKET_HTTP_RESPONSE not in (scope.get("extensions") or {}):
        # Without the extension, closing before accepting is the only refusal: the server
        # answers 403 with its own headers.
        await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
        return
    if authorized:
        status, body = 404, _NO_WEBSOCKETS_BODY
        headers = _text_headers(body, extra_headers)
    else:
        log.debug("refused a WebSocket upgrade of %s: no or wrong credentials", scope["path"])
        status, body = 401, _UNAUTHORIZED_BODY
        headers = _unauthorized_headers(extra_headers)
    await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def _adding_headers(send: Send, extra_headers: list[tuple[bytes, bytes]]) -> Send:
    if not extra_headers:
        return send
    configured = {name for name, _ in extra_headers}

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            # The operator's value wins over one the app may have set.
            kept = [
                (name, value)
                for name, value in message.get("headers", [])
                if bytes(name).lower() not in configured
            ]
            message = {**message, "headers": [*kept, *extra_headers]}
        await send(message)

    return send_with_headers
