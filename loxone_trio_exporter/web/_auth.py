"""Basic auth and the configured response headers, as an ASGI wrapper (exporter-toolkit rules).

- Each request is judged by the web config in force at that moment (``WebConfigProvider``), so a
  changed ``basic_auth_users`` applies from the next request on.
- bcrypt costs 70-350 ms of CPU per check (stack notes, pitfall 9): it runs in a worker thread,
  one check at a time as in the toolkit, while the event loop goes on serving.
- A successful check is cached under an HMAC (with a key made at start) of user, password and
  hash: a repeated scrape costs microseconds, a changed hash misses the cache, and nothing in the
  cache gives a password back.
- An unknown user is checked against a dummy hash of the same cost as the configured ones, so the
  time an answer takes does not tell whether a user exists.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import secrets
from collections import OrderedDict

import attrs
import bcrypt
import trio

from ._asgi import AsgiApp, Message, Receive, Scope, Send
from ._web_config import WebConfigFile
from ._web_config_source import WebConfigProvider

log = logging.getLogger(__name__)

REALM = "loxone-trio-exporter"
CHALLENGE = f'Basic realm="{REALM}"'.encode("ascii")
#: Distinct successful credentials remembered; the least recently used one goes first.
CACHE_SIZE = 100
#: bcrypt reads only this much of a password; Go's bcrypt ignores the rest, and so do we
#: (the bcrypt package for Python refuses longer input instead).
BCRYPT_PASSWORD_BYTES = 72
_DUMMY_DIGEST = b"." * 31  # any 31 characters: with a real salt it is a hash nothing matches
_UNAUTHORIZED_BODY = b"Unauthorized\n"


@attrs.frozen
class BasicAuthStatistics:
    """``bcrypt_checks``: checks that ran bcrypt; ``bcrypt_checks_in_progress``: running or
    waiting for the worker thread now; ``cache_hits``: checks answered from the cache."""

    bcrypt_checks: int
    bcrypt_checks_in_progress: int
    cache_hits: int


class BasicAuthChecker:
    """Checks user and password against a web config's bcrypt hashes; see the module notes."""

    def __init__(self, *, cache_size: int = CACHE_SIZE) -> None:
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self._cache_size = cache_size
        self._cache_key_secret = secrets.token_bytes(32)
        self._dummy_hashes: dict[int, bytes] = {}
        self._bcrypt_limiter = trio.CapacityLimiter(1)
        self._bcrypt_checks = 0
        self._bcrypt_checks_in_progress = 0
        self._cache_hits = 0

    async def check(self, config: WebConfigFile, user: str, password: bytes) -> bool:
        known_hash = config.bcrypt_hash_of(user)
        hash_to_check = known_hash or self._dummy_hash(config.highest_bcrypt_cost)
        cache_key = self._cache_key(user, password, hash_to_check)
        if known_hash is not None and cache_key in self._cache:
            self._cache.move_to_end(cache_key)
            self._cache_hits += 1
            return True
        self._bcrypt_checks_in_progress += 1
        try:
            matches = await trio.to_thread.run_sync(
                bcrypt.checkpw,
                password[:BCRYPT_PASSWORD_BYTES],
                hash_to_check,
                limiter=self._bcrypt_limiter,
            )
        finally:
            self._bcrypt_checks_in_progress -= 1
        self._bcrypt_checks += 1
        if not matches or known_hash is None:
            return False
        self._cache[cache_key] = None
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return True

    def statistics(self) -> BasicAuthStatistics:
        return BasicAuthStatistics(
            self._bcrypt_checks, self._bcrypt_checks_in_progress, self._cache_hits
        )

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
    response (401s included). ``lifespan`` events pass straight through."""
    auth_checker = checker if checker is not None else BasicAuthChecker()

    async def protected(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await app(scope, receive, send)
            return
        config = source.current()
        extra_headers = [
            (name.lower().encode("ascii"), value.encode("ascii")) for name, value in config.headers
        ]
        if config.basic_auth_users and not await _authorized(scope, config, auth_checker):
            log.debug("refused %s %s: no or wrong credentials", scope.get("method"), scope["path"])
            await _refuse(scope, receive, send, extra_headers)
            return
        await app(scope, receive, _adding_headers(send, extra_headers))

    return protected


async def _authorized(scope: Scope, config: WebConfigFile, checker: BasicAuthChecker) -> bool:
    for name, value in scope["headers"]:
        if bytes(name).lower() == b"authorization":
            credentials = basic_credentials(bytes(value))
            if credentials is None:
                return False
            return await checker.check(config, *credentials)
    return False


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


async def _refuse(
    scope: Scope, receive: Receive, send: Send, extra_headers: list[tuple[bytes, bytes]]
) -> None:
    if scope["type"] == "websocket":
        # Closing before accepting makes the server answer the upgrade with 403.
        await receive()
        await send({"type": "websocket.close", "code": 1008})
        return
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(_UNAUTHORIZED_BODY)).encode("ascii")),
        (b"www-authenticate", CHALLENGE),
        *extra_headers,
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": _UNAUTHORIZED_BODY})


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
