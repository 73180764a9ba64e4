"""Hostile Miniserver replies at every step of the session, sans-IO and through the exporter.

A simulated Miniserver answers every command for real; the fuzzer replaces its answer to the
n-th command (or to apiKey / getPublicKey over HTTP) with a mutated one: a value anywhere in the
reply replaced by a hostile JSON literal (10**400, NaN, "²", a lone surrogate, 70k characters,
nesting beyond the recursion limit ...), a key dropped or added, the text replaced or cut, a
table's bytes patched, a binary frame where text belongs, no header, a wrong header, ...

Properties:

- sans-IO (``ClientSession`` paired with the simulator's ``ServerSession``): ``receive`` never
  raises; every event is a session event; what the runtime computes with (token times, the
  structure version, the structure file, status codes) is in range; a session that fails says why
  in plain words without a password or token.
- end to end (``MiniserverConnection`` over in-memory streams on virtual time): the connection
  task never raises (only cancellation ends it); every session that ends is reported as a
  ``SessionLost`` with a ``ReconnectReason`` and a non-empty detail; the reason is never
  ``internal_error`` (hostile input is recognised as a protocol fault or a refusal, not taken
  for a bug); no detail and no log line contains the password or a token.

Examples are few (the exporter runs a whole login per example) and reproducible: derandomized,
no example database.
"""

from __future__ import annotations

import json
import logging
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, get_args

import attrs
import hypothesis
import pytest
import trio
import trio.testing
from connection_harness import USERS, config_for, in_memory, new_server
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loxone_strategies import garbage_texts, hostile_json_literals

from loxone_trio_exporter.errors import StructureError
from loxone_trio_exporter.protocol import (
    MessageIdentifier,
    SessionKey,
    build_header,
    loxone_time_to_unix,
    parse_header,
)
from loxone_trio_exporter.protocol._session import (
    Authenticated,
    ClientSession,
    ClientState,
    SendCommand,
    SessionEvent,
    SessionFailed,
    StoredToken,
    StructureLoaded,
    TokenAcquired,
    TokenKilled,
    TokenRejected,
)
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    ReconnectReason,
    SessionLost,
    StatusChanged,
)
from loxone_trio_exporter.simulator._accounts import Accounts
from loxone_trio_exporter.simulator._model import SimulatedMiniserver
from loxone_trio_exporter.simulator._session import Send, ServerSession
from loxone_trio_exporter.simulator._tokens import APP_TOKEN_LIFETIME
from loxone_trio_exporter.structure import build_state_index, load_structure

UINT32_MAX = 2**32 - 1
WAITING = ConnectionState.WAITING
#: Under the project's ``fuzz`` profile (HYPOTHESIS_PROFILE=fuzz, see conftest) these tests run
#: long and random; otherwise few examples, derandomized, without a database: the same in CI.
FUZZING = settings.default.max_examples >= 10_000


def fuzz_settings(examples: int, examples_when_fuzzing: int) -> settings:
    return settings(
        max_examples=examples_when_fuzzing if FUZZING else examples,
        derandomize=not FUZZING,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- mutations of one reply ------------------------------------------------------------------

# Keys worth adding where they are missing: everything the client reads from some reply.
INTERESTING_KEYS = [
    "Code",
    "code",
    "control",
    "value",
    "key",
    "salt",
    "hashAlg",
    "token",
    "validUntil",
    "tokenRights",
    "unsecurePass",
    "snr",
    "version",
    "httpsStatus",
    "lastModified",
    "msInfo",
    "miniserverType",
    "controls",
    "rooms",
    "type",
]
_SENTINEL = "\x00hostile\x00"
_SENTINEL_JSON = json.dumps(_SENTINEL)

Path = tuple[Any, ...]  # keys and indexes; _EMBEDDED steps into the JSON object in a string
_EMBEDDED = object()


def _embedded_object(value: object) -> dict[str, Any] | None:
    """A string holding a JSON object (apiKey's value is one, with single quotes)."""
    if not isinstance(value, str) or not value.lstrip().startswith("{"):
        return None
    for candidate in (value, value.replace("'", '"')):
        try:
            parsed = json.loads(candidate)
        except (ValueError, RecursionError):
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def _places(value: Any, path: Path = ()) -> Iterator[Path]:
    """Every path to a value inside a JSON document, in document order, the objects inside
    strings included (their path ends with ``_EMBEDDED``)."""
    if isinstance(value, dict):
        items: list[tuple[Any, Any]] = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        inner = _embedded_object(value)
        if inner is not None:
            yield (*path, _EMBEDDED)
            yield from _places(inner, (*path, _EMBEDDED))
        return
    for key, item in items:
        yield (*path, key)
        yield from _places(item, (*path, key))


def _objects(document: Any) -> list[Path]:
    """Paths to every object of the document: the document itself first, then in order.

    For an LL reply: 0 is the document, 1 ``LL``, 2 ``LL.value`` (an object, or the object
    inside apiKey's string value)."""
    found: list[Path] = [()] if isinstance(document, dict) else []
    return found + [path for path in _places(document) if isinstance(_get(document, path), dict)]


def _get(document: Any, path: Path) -> Any:
    for step in path:
        document = _embedded_object(document) if step is _EMBEDDED else document[step]
    return document


def _placed(document: Any, path: Path, literal: str | None) -> str:
    """The document as JSON text with ``literal`` (raw JSON) at ``path``; ``None`` removes it.

    A path through a string that holds an object edits that object and writes it back as a
    string, as apiKey's value is."""
    if _EMBEDDED in path:
        cut = path.index(_EMBEDDED)
        outer, inner = path[:cut], path[cut + 1 :]
        text = _placed(_get(document, (*outer, _EMBEDDED)), inner, literal) if inner else literal
        return _placed(document, outer, json.dumps(text if text is not None else ""))
    if not path:
        return literal if literal is not None else ""
    container, key = _get(document, path[:-1]), path[-1]
    if literal is None:
        del container[key]
        return json.dumps(document, ensure_ascii=False)
    container[key] = _SENTINEL
    return json.dumps(document, ensure_ascii=False).replace(_SENTINEL_JSON, literal)


def _short(text: str) -> str:
    return f"{text[:40]!r}<{len(text)}>"


@attrs.frozen
class SetValue:
    """Replace the ``selector``-th value of the reply (in document order) by ``literal``."""

    selector: int
    literal: str = attrs.field(repr=_short)

    def apply(self, document: Any) -> str | None:
        places = list(_places(document))
        if not places:
            return None
        return _placed(document, places[self.selector % len(places)], self.literal)


@attrs.frozen
class AddKey:
    """Set ``key`` to ``literal`` in the ``selector``-th object of the reply (see ``_objects``)."""

    selector: int
    key: str
    literal: str = attrs.field(repr=_short)

    def apply(self, document: Any) -> str | None:
        objects = _objects(document)
        if not objects:
            return None
        return _placed(document, (*objects[self.selector % len(objects)], self.key), self.literal)


@attrs.frozen
class DropValue:
    """Remove the ``selector``-th value of the reply."""

    selector: int

    def apply(self, document: Any) -> str | None:
        places = [path for path in _places(document) if path[-1] is not _EMBEDDED]
        if not places:
            return None
        return _placed(document, places[self.selector % len(places)], None)


JsonMutation = SetValue | AddKey | DropValue


@attrs.frozen
class ReplaceText:
    """The whole payload replaced by ``text``."""

    text: str


@attrs.frozen
class CutText:
    """The payload cut after ``fraction`` of its characters (or bytes)."""

    fraction: float


@attrs.frozen
class PatchBytes:
    """Four bytes of a binary payload (a table) overwritten: counts, lengths, doubles."""

    selector: int
    value: int  # written as int32 little-endian

    def apply(self, data: bytes) -> bytes:
        if len(data) < 4:
            return data
        offset = self.selector % (len(data) - 3)
        return data[:offset] + self.value.to_bytes(4, "little", signed=True) + data[offset + 4 :]


PayloadMutation = SetValue | AddKey | DropValue | ReplaceText | CutText | PatchBytes


def mutate_payload(payload: str | bytes, mutation: PayloadMutation) -> str | bytes:
    if isinstance(mutation, ReplaceText):
        return mutation.text
    if isinstance(mutation, CutText):
        return payload[: int(len(payload) * mutation.fraction)]
    if isinstance(payload, bytes):
        return mutation.apply(payload) if isinstance(mutation, PatchBytes) else payload
    if isinstance(mutation, PatchBytes):
        return payload
    try:
        document = json.loads(payload)
    except (ValueError, RecursionError):
        return payload
    changed = mutation.apply(document)
    return payload if changed is None else changed


@attrs.frozen
class HostileReply:
    """How one reply is spoiled: its payload, then how it is framed.

    ``framing``: ``as_sent`` (a header announcing the new length, then the payload), ``binary``
    (the text as a binary frame), ``no_header``, ``wrong_identifier`` (the header says
    ``identifier``), ``joined`` (header and payload in one binary message), ``header_only``,
    ``twice`` (the reply sent two times), ``garbage_after`` (one more binary message of
    ``garbage``).
    """

    payload: PayloadMutation
    framing: str = "as_sent"
    identifier: int = 0
    garbage: bytes = b""

    def apply(self, messages: tuple[bytes | str, ...]) -> list[bytes | str]:
        *headers, last = messages
        if not headers:  # a header alone (keepalive, an empty table): nothing to spoil inside
            header_bytes, payload = last, None
        else:
            header_bytes, payload = headers[-1], last
        assert isinstance(header_bytes, bytes)
        identifier = parse_header(header_bytes).identifier
        if payload is not None:
            payload = mutate_payload(payload, self.payload)
        return self._frame(identifier, payload)

    def _frame(self, identifier: int, payload: str | bytes | None) -> list[bytes | str]:
        raw = b"" if payload is None else _encoded(payload)
        header = build_header(MessageIdentifier(identifier), len(raw))
        body: list[bytes | str] = [] if payload is None or not raw else [payload]
        framings: dict[str, Callable[[], list[bytes | str]]] = {
            "as_sent": lambda: [header, *body],
            "binary": lambda: [header, raw],
            "no_header": lambda: body,
            "wrong_identifier": lambda: [
                build_header(MessageIdentifier(self.identifier), len(raw)),
                *body,
            ],
            "joined": lambda: [header + raw],
            "header_only": lambda: [header],
            "twice": lambda: [header, *body, header, *body],
            "garbage_after": lambda: [header, *body, self.garbage],
        }
        return framings[self.framing]()


def _encoded(payload: str | bytes) -> bytes:
    if isinstance(payload, bytes):
        return payload
    return payload.encode("utf-8", "surrogatepass")


def _safe_text(payload: str | bytes) -> str | bytes:
    # A WebSocket text frame must be valid UTF-8 (wsproto refuses lone surrogates): the
    # in-memory server sends those as the replacement character, a real socket never carries them.
    if isinstance(payload, str):
        return payload.encode("utf-8", "replace").decode("utf-8")
    return payload


json_mutations = st.one_of(
    st.builds(SetValue, st.integers(0, 200), hostile_json_literals),
    st.builds(AddKey, st.integers(0, 50), st.sampled_from(INTERESTING_KEYS), hostile_json_literals),
    st.builds(DropValue, st.integers(0, 200)),
)
payload_mutations = st.one_of(
    json_mutations,
    json_mutations,  # twice as likely: they reach the parsers behind the JSON
    st.builds(ReplaceText, garbage_texts),
    st.builds(CutText, st.floats(0.0, 1.0)),
    st.builds(PatchBytes, st.integers(0, 4000), st.integers(-(2**31), 2**31 - 1)),
)
hostile_replies = st.builds(
    HostileReply,
    payload=payload_mutations,
    framing=st.sampled_from(
        ["as_sent"] * 6
        + ["binary", "no_header", "wrong_identifier", "joined", "header_only", "twice"]
        + ["garbage_after"]
    ),
    identifier=st.sampled_from(list(MessageIdentifier)),
    garbage=st.binary(max_size=40),
)


# --- sans-IO: a ClientSession paired with the simulator's ServerSession ------------------------

PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
PUBLIC_KEY_PEM = (
    PRIVATE_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
)
SESSION_KEY = SessionKey(key=bytes(range(32)), iv=bytes(range(100, 116)))
NOW = 1_700_000_000.0
USER = USERS[0]
CLIENT_UUID = "098802e1-02b4-603c-ffffeee000d80cfd"
MINISERVER = SimulatedMiniserver.generate(6, seed=11)
ENDINGS = ("SessionFailed", "OutOfService", "TokenKilled")


def counter_random() -> Callable[[int], bytes]:
    counter = iter(range(10**9))
    return lambda size: next(counter).to_bytes(8, "big").rjust(size, b"\x5a")[:size]


@attrs.frozen
class SansIoCase:
    """One fuzzed session: its options, what it does once streaming, and the spoiled reply."""

    tls: bool
    stored_token: bool
    cached_structure: bool
    refreshes: int
    kill: bool
    command_index: int
    send_index: int
    hostile: HostileReply


sans_io_cases = st.builds(
    SansIoCase,
    tls=st.booleans(),
    stored_token=st.booleans(),
    cached_structure=st.booleans(),
    refreshes=st.integers(0, 2),
    kill=st.booleans(),
    command_index=st.integers(0, 11),
    send_index=st.integers(0, 5),
    hostile=hostile_replies,
)


@attrs.define
class SansIoRun:
    """Plays the case: the server answers each command; one answer is spoiled."""

    case: SansIoCase
    client: ClientSession
    server: ServerSession
    secrets: set[str]
    events: list[SessionEvent] = attrs.Factory(list)
    commands_seen: int = 0
    spoiled: bool = False

    def ending(self) -> str:
        """How the session ended, for Hypothesis' statistics."""
        for event in reversed(self.events):
            if type(event).__name__ in ENDINGS:
                return type(event).__name__
        return self.client.state.name

    def play(self, commands: list[str]) -> bool:
        """Send ``commands`` and what the client asks for next; False once the session ended."""
        queue = deque(commands)
        while queue:
            index, self.commands_seen = self.commands_seen, self.commands_seen + 1
            outputs = self.server.receive(queue.popleft(), NOW)
            sends = [output for output in outputs if isinstance(output, Send)]
            for position, send in enumerate(sends):
                remember_tokens(send.messages, self.secrets)
                messages: list[bytes | str] = list(send.messages)
                if self._spoiled(index, position, len(sends)):
                    self.spoiled = True
                    messages = [_safe_text(m) for m in self.case.hostile.apply(send.messages)]
                for message in messages:
                    for event in self.client.receive(message):
                        check_session_event(event, self.secrets)
                        self.events.append(event)
                        if isinstance(event, SendCommand):
                            queue.append(event.text)
                        elif type(event).__name__ in ENDINGS:
                            assert self.client.state in (ClientState.CLOSED, ClientState.ERROR)
                            return False
        return self.client.state is ClientState.STREAMING

    def _spoiled(self, index: int, position: int, count: int) -> bool:
        return index == self.case.command_index and position == self.case.send_index % count


def remember_tokens(messages: tuple[bytes | str, ...], secrets: set[str]) -> None:
    """Every token the simulator hands out is a secret that must never show up anywhere."""
    for message in messages:
        if not isinstance(message, str) or '"token"' not in message:
            continue
        try:
            token = json.loads(message)["LL"]["value"]["token"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(token, str):
            secrets.add(token)


def check_session_event(event: object, secrets: set[str]) -> None:
    """What the runtime does with each event must be safe: numbers in range, readable text."""
    assert isinstance(event, get_args(SessionEvent)), event
    if isinstance(event, SessionFailed):
        assert event.reason.strip()
        assert event.code is None or 0 <= event.code <= 999
        assert not any(secret in event.reason for secret in secrets), event.reason
    elif isinstance(event, TokenAcquired | Authenticated):
        check_loxone_time(event.token.valid_until)
    elif isinstance(event, TokenRejected):
        assert 0 <= event.code <= 999
    elif isinstance(event, StructureLoaded):
        assert len(event.last_modified) <= 64
        assert event.last_modified.isprintable()
        check_structure(event.text)


def check_structure(text: str) -> None:
    """The runtime parses and indexes the file: that raises StructureError or nothing."""
    problem = None
    try:
        build_state_index(load_structure(text))
    except StructureError as exc:
        problem = str(exc)
    assert problem is None or problem.strip()


def check_loxone_time(seconds: int) -> None:
    """What the runtime does with a token time (Unix time, as a float) must work."""
    assert 0 <= seconds <= UINT32_MAX
    assert math.isfinite(float(loxone_time_to_unix(seconds)))


def run_sans_io(case: SansIoCase) -> SansIoRun:
    accounts = Accounts([USER], random_bytes=counter_random())
    stored = None
    secrets = {USER.password}
    if case.stored_token:
        issued = accounts.issue_token(USER, 4, CLIENT_UUID, NOW)
        secrets.add(issued.token)
        stored = StoredToken(
            token=issued.token,
            valid_until=issued.valid_until,
            hash_algorithm=USER.hash_algorithm,
            client_uuid=CLIENT_UUID,
        )
    server = ServerSession(
        accounts, MINISERVER, PRIVATE_KEY, tls=case.tls, random_bytes=counter_random()
    )
    client = ClientSession(
        USER.name,
        USER.password,
        client_uuid=CLIENT_UUID,
        public_key_text=None if case.tls else PUBLIC_KEY_PEM,
        session_key=None if case.tls else SESSION_KEY,
        salt=None if case.tls else "a1b2",
        stored_token=stored,
        cached_last_modified=MINISERVER.last_modified if case.cached_structure else None,
        tls=case.tls,
    )
    run = SansIoRun(case, client, server, secrets)
    streaming = run.play(client.start())
    # Like the runtime: refresh or kill only a streaming session that holds a token and has no
    # token operation under way (a refused refresh drops the token; nothing is tried after).
    for _ in range(case.refreshes):
        token = held_token(run.events, stored)
        if not (streaming and token and client.token_operation.name == "NONE"):
            return run
        streaming = run.play(client.request_token_refresh(token))
    token = held_token(run.events, stored)
    if streaming and case.kill and token and client.token_operation.name == "NONE":
        run.play(client.kill_token_commands(token))
    return run


def held_token(events: list[SessionEvent], stored: StoredToken | None) -> StoredToken | None:
    """The token the caller holds after ``events``, as the runtime's keeper would."""
    token = stored
    for event in events:
        if isinstance(event, TokenAcquired):
            token = event.token
        elif isinstance(event, TokenRejected | TokenKilled):
            token = None
    return token


@fuzz_settings(1500, 100_000)
@given(sans_io_cases)
def test_hostile_replies_to_a_client_session_never_raise(case: SansIoCase) -> None:
    run = run_sans_io(case)
    hypothesis.event(f"spoiled: {run.spoiled}; ended: {run.ending()}")


def test_the_sans_io_pairing_streams_and_refreshes_without_hostility() -> None:
    # The harness itself must work: with the spoiled reply out of reach, all goes well.
    case = SansIoCase(
        tls=False,
        stored_token=False,
        cached_structure=False,
        refreshes=2,
        kill=True,
        command_index=99,
        send_index=0,
        hostile=HostileReply(ReplaceText("")),
    )
    run = run_sans_io(case)
    kinds = [type(event).__name__ for event in run.events if not isinstance(event, SendCommand)]
    assert kinds.count("TokenAcquired") == 3
    assert kinds[-1] == "TokenKilled"
    assert run.commands_seen == 12  # keyexchange .. enable (6), 2 x (getkey2, refreshjwt), kill


@pytest.mark.parametrize(
    ("command_index", "field"),
    [(2, "validUntil"), (2, "tokenRights"), (7, "validUntil"), (7, "tokenRights")],
    ids=["getjwt-validUntil", "getjwt-tokenRights", "refreshjwt-validUntil", "refreshjwt-rights"],
)
def test_a_huge_token_number_fails_the_session_with_a_reason(
    command_index: int, field: str
) -> None:
    hostile = HostileReply(AddKey(2, field, "1" + "0" * 400))  # object 2: LL.value
    case = SansIoCase(False, False, False, 1, False, command_index, 0, hostile)
    run = run_sans_io(case)
    (failed,) = [event for event in run.events if isinstance(event, SessionFailed)]
    assert f"{field} must be between 0 and 4294967295" in failed.reason


# --- end to end: the exporter's connection task against the simulator, in memory --------------

WALL_START = 1_800_000_000.0
#: The exporter's clock runs this far ahead of the simulator's: every token it gets has 100 s
#: left, so it refreshes 50 s after streaming starts (and every 50 s after that).
EXPORTER_AHEAD = APP_TOKEN_LIFETIME - 100.0
HORIZON_SECONDS = 400.0  # virtual time to reach the spoiled step (refreshes included)
AFTERMATH_SECONDS = 120.0  # virtual time to see what the spoiled reply does


@attrs.frozen
class WebSocketTarget:
    """The reply to the ``command_index``-th command of the run (keepalives not counted)."""

    command_index: int
    send_index: int = 0


@attrs.frozen
class HttpTarget:
    """The ``request_index``-th HTTP answer to ``path``."""

    path: str
    request_index: int = 0


@attrs.frozen
class ExporterCase:
    target: WebSocketTarget | HttpTarget
    hostile: HostileReply


exporter_cases = st.builds(
    ExporterCase,
    target=st.one_of(
        st.builds(WebSocketTarget, st.integers(0, 11), st.integers(0, 5)),
        st.builds(WebSocketTarget, st.integers(0, 11), st.integers(0, 5)),
        st.builds(
            HttpTarget,
            st.sampled_from(["/jdev/cfg/apiKey", "/jdev/sys/getPublicKey"]),
            st.integers(0, 1),
        ),
    ),
    hostile=hostile_replies,
)


class _HostileSession:
    """A ``ServerSession`` whose answer to one command is spoiled (test side; the simulator is
    unchanged). Everything else is the real session's."""

    def __init__(self, inner: ServerSession, spoiler: _Spoiler) -> None:
        self._inner = inner
        self._spoiler = spoiler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def receive(self, text: str, now_unix: float) -> list[Any]:
        outputs = self._inner.receive(text, now_unix)
        if text == "keepalive":
            return outputs
        return self._spoiler.websocket_outputs(outputs)


@attrs.define
class _Spoiler:
    case: ExporterCase
    secrets: set[str]
    commands_seen: int = 0
    http_seen: int = 0
    delivered: trio.Event = attrs.Factory(trio.Event)

    def websocket_outputs(self, outputs: list[Any]) -> list[Any]:
        target = self.case.target
        index, self.commands_seen = self.commands_seen, self.commands_seen + 1
        sends = [output for output in outputs if isinstance(output, Send)]
        for send in sends:
            remember_tokens(send.messages, self.secrets)
        if not isinstance(target, WebSocketTarget) or index != target.command_index or not sends:
            return outputs
        chosen = sends[target.send_index % len(sends)]
        self.delivered.set()
        spoiled = Send(tuple(_safe_text(m) for m in self.case.hostile.apply(chosen.messages)))
        return [spoiled if output is chosen else output for output in outputs]

    def http_body(self, path: str, body: object) -> object:
        target = self.case.target
        if not isinstance(target, HttpTarget) or path != target.path or not isinstance(body, str):
            return body
        index, self.http_seen = self.http_seen, self.http_seen + 1
        if index != target.request_index:
            return body
        self.delivered.set()
        spoiled = mutate_payload(body, self.case.hostile.payload)
        return _encoded(spoiled)


class _RespondProxy:
    def __init__(self, conn: Any, path: str, spoiler: _Spoiler) -> None:
        self._conn = conn
        self._path = path
        self._spoiler = spoiler

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    async def respond(self, status: int, body: object, **options: Any) -> None:
        await self._conn.respond(status, self._spoiler.http_body(self._path, body), **options)


def spoil(server: Any, spoiler: _Spoiler) -> None:
    """Wrap the server's sessions and HTTP answers (instance attributes, test side only)."""
    new_session, serve_http = server.new_session, server._serve_http

    def hostile_new_session(*, secure: bool) -> _HostileSession:
        return _HostileSession(new_session(secure=secure), spoiler)

    async def hostile_serve_http(conn: Any, request: Any) -> None:
        await serve_http(_RespondProxy(conn, request.path.rstrip("/"), spoiler), request)

    server.new_session = hostile_new_session
    server._serve_http = hostile_serve_http


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def run_exporter(case: ExporterCase) -> tuple[list[Any], _Spoiler, list[str]]:
    """Run the connection task until the spoiled reply had its effect; its messages, the
    spoiler, and every log line of the package."""
    spoiler = _Spoiler(case, {USER.password})
    lines = _Lines()
    package_log = logging.getLogger("loxone_trio_exporter")
    old_level = package_log.level
    package_log.addHandler(lines)
    package_log.setLevel(logging.DEBUG)

    async def scenario() -> list[Any]:
        spoiler.delivered = trio.Event()
        server = new_server(
            rate=0.0, tick_seconds=3600.0, wall_clock=lambda: WALL_START + trio.current_time()
        )
        spoil(server, spoiler)
        wall = lambda: WALL_START + EXPORTER_AHEAD + trio.current_time()  # noqa: E731
        async with in_memory(server, config_for(80, USER), wall_clock=wall) as recorder:
            with trio.move_on_after(HORIZON_SECONDS):
                await spoiler.delivered.wait()
            if spoiler.delivered.is_set():
                lost_before = _count(recorder.messages, SessionLost)
                with trio.move_on_after(AFTERMATH_SECONDS):
                    await recorder.wait_for(
                        lambda m: isinstance(m, SessionLost), count=lost_before + 1
                    )
        return [message for _, message in recorder.messages]

    try:
        messages = trio.run(scenario, clock=trio.testing.MockClock(autojump_threshold=0))
    finally:
        package_log.removeHandler(lines)
        package_log.setLevel(old_level)
    return messages, spoiler, lines.lines


def _count(messages: list[tuple[float, Any]], kind: type) -> int:
    return sum(isinstance(message, kind) for _, message in messages)


def check_exporter_run(messages: list[Any], secrets: set[str], lines: list[str]) -> None:
    lost = [message for message in messages if isinstance(message, SessionLost)]
    waits = [m for m in messages if isinstance(m, StatusChanged) and m.state is WAITING]
    assert len(lost) == len(waits)  # every session that ended was reported before the wait
    for message in lost:
        assert isinstance(message.reason, ReconnectReason)
        assert message.reason.value != "internal_error", message.detail
        assert message.detail.strip()
    details = [m.detail for m in lost] + [m.detail for m in waits]
    for secret in secrets:
        assert not any(secret in detail for detail in details)
        assert not any(secret in line for line in lines)


@fuzz_settings(300, 3_000)
@given(exporter_cases)
def test_hostile_replies_never_crash_the_connection_task(case: ExporterCase) -> None:
    messages, spoiler, lines = run_exporter(case)
    check_exporter_run(messages, spoiler.secrets, lines)
    reasons = sorted({m.reason.value for m in messages if isinstance(m, SessionLost)})
    hypothesis.event(f"spoiled: {spoiler.delivered.is_set()}; sessions lost: {reasons}")


def _value_literal(field: str, literal: str) -> HostileReply:
    return HostileReply(AddKey(2, field, literal))  # object 2 of an LL reply: its value


@pytest.mark.parametrize(
    ("target", "hostile", "reason"),
    [
        # The original report: validUntil = 10**400 in a token reply (getjwt, then refreshjwt).
        (WebSocketTarget(2), _value_literal("validUntil", "1" + "0" * 400), "protocol_error"),
        (WebSocketTarget(7), _value_literal("validUntil", "1" + "0" * 400), "protocol_error"),
        (WebSocketTarget(2), _value_literal("tokenRights", '"²"'), "protocol_error"),
        (WebSocketTarget(1), _value_literal("salt", '"\\ud800"'), "protocol_error"),
        (WebSocketTarget(3), HostileReply(SetValue(2, '"' + "9" * 70 + '"')), "protocol_error"),
        (WebSocketTarget(1), HostileReply(AddKey(1, "Code", '"' + "9" * 5000 + '"')), None),
        (HttpTarget("/jdev/cfg/apiKey"), _value_literal("version", '"²"'), "protocol_error"),
        (HttpTarget("/jdev/cfg/apiKey"), _value_literal("httpsStatus", "1e400"), "protocol_error"),
    ],
    ids=[
        "getjwt-validUntil-10**400",
        "refreshjwt-validUntil-10**400",
        "getjwt-tokenRights-superscript",
        "getkey2-salt-surrogate",
        "LoxAPPversion3-70-characters",
        "getkey2-Code-5000-digits",
        "apiKey-version-superscript",
        "apiKey-httpsStatus-inf",
    ],
)
def test_known_hostile_replies_end_the_session_as_a_protocol_fault(
    target: WebSocketTarget | HttpTarget, hostile: HostileReply, reason: str | None
) -> None:
    messages, spoiler, lines = run_exporter(ExporterCase(target, hostile))
    assert spoiler.delivered.is_set()
    check_exporter_run(messages, spoiler.secrets, lines)
    lost = [message for message in messages if isinstance(message, SessionLost)]
    if reason is None:  # not a usable reply: ignored, the session waits and times out instead
        assert lost
    else:
        assert lost[0].reason.value == reason, lost[0]


def test_a_reply_the_session_cannot_use_leaves_it_awaiting_the_answer() -> None:
    # The session reports it and keeps waiting; awaiting_reply lets the caller bound the wait.
    case = SansIoCase(True, False, False, 0, False, 2, 0, HostileReply(AddKey(1, "Code", '"x"')))
    run = run_sans_io(case)  # command 2 over TLS: LoxAPPversion3
    assert type(run.events[-1]).__name__ == "UnexpectedReply"
    assert run.client.state is ClientState.LOADING_STRUCTURE
    assert run.client.awaiting_reply
    unspoiled = run_sans_io(attrs.evolve(case, command_index=99))
    assert unspoiled.client.state is ClientState.STREAMING
    assert not unspoiled.client.awaiting_reply
