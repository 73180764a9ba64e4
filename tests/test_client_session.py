"""The client session, paired in memory with the simulator's server session (no sockets).

Every ``Send`` of the server goes message by message into ``ClientSession.receive``; every
``SendCommand`` the client returns goes into ``ServerSession.receive``. Error paths the simulator
cannot produce are played by a scripted Miniserver that answers with hand-made replies.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, get_args

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from loxone_trio_exporter.errors import LocalProtocolError, RemoteProtocolError
from loxone_trio_exporter.protocol import (
    DaytimerStatesReceived,
    HashAlgorithm,
    KeepaliveReceived,
    LoginEra,
    MessageIdentifier,
    MessageReader,
    OutOfService,
    SessionKey,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
    build_header,
    decode_encrypted_command,
    encode_ll_reply,
    encode_value_states,
    frame_binary_message,
    frame_text_message,
    is_encrypted_command,
    legacy_hash,
    login_era,
    unix_to_loxone_time,
)
from loxone_trio_exporter.protocol._session import (
    AUTH_FAILURE_CODES,
    Authenticated,
    ClientSession,
    ClientState,
    SendCommand,
    SessionEvent,
    SessionFailed,
    StoredToken,
    StructureLoaded,
    StructureUnchanged,
    TokenAcquired,
    TokenKilled,
    TokenOperation,
    TokenRejected,
    UnexpectedReply,
    UpdatesEnabled,
    token_refresh_delay,
)
from loxone_trio_exporter.protocol._session_states import (
    TOKEN_OPERATION_TRANSITIONS,
    TRANSITIONS,
    Lifecycle,
    Step,
)
from loxone_trio_exporter.simulator._accounts import Accounts, User
from loxone_trio_exporter.simulator._firmware import Firmware
from loxone_trio_exporter.simulator._model import SimulatedMiniserver
from loxone_trio_exporter.simulator._session import Close, Send, ServerSession

# 1024 bits: fast, and enough for the 97-byte session key payload.
PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
PUBLIC_KEY_PEM = (
    PRIVATE_KEY.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
)
NOW = 1_700_000_000.0
SHA1_USER = User("alice", "correct horse battery", HashAlgorithm.SHA1)
SHA256_USER = User("bøb/x", "staple battery", HashAlgorithm.SHA256)  # needs percent-encoding
SESSION_KEY = SessionKey(key=bytes(range(32)), iv=bytes(range(100, 116)))
SALT = "a1b2"
CLIENT_UUID = "098802e1-02b4-603c-ffffeee000d80cfd"
TABLE_TYPES = (
    ValueStatesReceived,
    TextStatesReceived,
    DaytimerStatesReceived,
    WeatherStatesReceived,
)
TEXT = MessageIdentifier.TEXT
SERIAL_RANDOM = iter(range(10**9))


def counter_random(size: int) -> bytes:
    """A deterministic stand-in for os.urandom (different bytes on every call)."""
    return next(SERIAL_RANDOM).to_bytes(8, "big").rjust(size, b"\x5a")[:size]


def make_accounts() -> Accounts:
    return Accounts([SHA1_USER, SHA256_USER], random_bytes=counter_random)


def make_client(user: User = SHA1_USER, **options: object) -> ClientSession:
    settings: dict[str, object] = {
        "public_key_text": PUBLIC_KEY_PEM,
        "session_key": SESSION_KEY,
        "salt": SALT,
        "client_uuid": CLIENT_UUID,
    }
    settings.update(options)
    return ClientSession(user.name, user.password, **settings)  # type: ignore[arg-type]


Hook = Callable[[str], list[SessionEvent]]


@attrs.define
class Pair:
    """A client and a server session wired together in memory."""

    client: ClientSession
    server: ServerSession
    miniserver: SimulatedMiniserver
    accounts: Accounts
    sent: list[str] = attrs.Factory(list)
    closes: list[Close] = attrs.Factory(list)
    before_command: Hook | None = None

    def run(self, commands: Iterable[str]) -> list[SessionEvent]:
        """Send ``commands`` and whatever the client asks for next, until nothing is left."""
        events: list[SessionEvent] = []
        queue = deque(commands)
        while queue:
            command = queue.popleft()
            self.sent.append(command)
            if self.before_command is not None:
                events.extend(self.before_command(command))
            for output in self.server.receive(command, NOW):
                if isinstance(output, Send):
                    for message in output.messages:
                        for event in self.client.receive(message):
                            events.append(event)
                            if isinstance(event, SendCommand):
                                queue.append(event.text)
                elif isinstance(output, Close):
                    self.closes.append(output)
        return events

    def start(self) -> list[SessionEvent]:
        return self.run(self.client.start())

    def commands(self) -> list[str]:
        """What the client sent, with encrypted commands decrypted."""
        return [plain(command) for command in self.sent]


def plain(command: str) -> str:
    if is_encrypted_command(command):
        return decode_encrypted_command(command, SESSION_KEY).command
    return command


def connect(
    user: User = SHA1_USER,
    *,
    accounts: Accounts | None = None,
    server_options: dict[str, object] | None = None,
    **client_options: object,
) -> Pair:
    accounts = accounts or make_accounts()
    miniserver = SimulatedMiniserver.generate(6, seed=11)
    server = ServerSession(
        accounts,
        miniserver,
        PRIVATE_KEY,
        random_bytes=counter_random,
        **(server_options or {}),  # type: ignore[arg-type]
    )
    return Pair(make_client(user, **client_options), server, miniserver, accounts)


def streaming(user: User = SHA1_USER, **client_options: object) -> tuple[Pair, StoredToken]:
    """A pair streaming after a getjwt login, and the token it acquired (the caller keeps it)."""
    pair = connect(user, **client_options)
    events = pair.start()
    assert pair.client.state is ClientState.STREAMING, events
    (acquired,) = of_type(events, TokenAcquired)
    return pair, acquired.token


T = TypeVar("T")


def of_type(events: Iterable[object], kind: type[T]) -> list[T]:
    return [event for event in events if isinstance(event, kind)]


def without_commands(events: Iterable[SessionEvent]) -> list[SessionEvent]:
    return [event for event in events if not isinstance(event, SendCommand)]


def kinds(events: Iterable[SessionEvent]) -> list[type]:
    return [type(event) for event in without_commands(events)]


def decoded_full_tables(miniserver: SimulatedMiniserver) -> list[object]:
    reader = MessageReader()
    events = []
    for identifier, payload in miniserver.full_tables():
        for message in frame_binary_message(identifier, payload):
            event = reader.receive(message)
            if event is not None:
                events.append(event)
    return events


def feed(client: ClientSession, messages: Iterable[bytes | str]) -> list[SessionEvent]:
    events: list[SessionEvent] = []
    for message in messages:
        events.extend(client.receive(message))
    return events


def table_messages(value: float) -> list[bytes]:
    payload = encode_value_states([(bytes(range(16)), value)])
    return frame_binary_message(MessageIdentifier.VALUE_STATES, payload)


# --- the whole flow against the simulator ----------------------------------------------------


@pytest.mark.parametrize("user", [SHA1_USER, SHA256_USER], ids=["SHA1", "SHA256"])
@pytest.mark.parametrize("estimated", [False, True], ids=["exact", "estimated"])
def test_full_login_loads_structure_enables_updates_and_streams(
    user: User, estimated: bool
) -> None:
    pair = connect(user, server_options={"estimated_headers": estimated})
    events = pair.start()

    assert kinds(events) == [
        TokenAcquired,
        Authenticated,
        StructureLoaded,
        UpdatesEnabled,
        *TABLE_TYPES,
    ]
    event, authenticated, loaded, _enabled, *tables = without_commands(events)
    assert isinstance(event, TokenAcquired)
    acquired = event.token
    assert acquired.hash_algorithm is user.hash_algorithm
    assert acquired.client_uuid == CLIENT_UUID
    assert acquired.valid_until > unix_to_loxone_time(int(NOW))
    assert acquired.valid_until == authenticated.token.valid_until
    assert isinstance(authenticated, Authenticated)
    assert authenticated.via_token is False
    assert authenticated.token.token == acquired.token
    assert isinstance(loaded, StructureLoaded)
    assert loaded.text == pair.miniserver.structure_text()
    assert loaded.last_modified == pair.miniserver.last_modified
    assert tables == decoded_full_tables(pair.miniserver)

    assert pair.client.state is ClientState.STREAMING
    assert pair.server.streaming
    assert pair.server.user == user
    assert pair.server.token == acquired.token
    commands = pair.commands()
    assert commands[0].startswith("jdev/sys/keyexchange/")
    assert commands[1].startswith("jdev/sys/getkey2/")
    assert commands[2].startswith("jdev/sys/getjwt/")
    assert commands[3:] == [
        "jdev/sps/LoxAPPversion3",
        "data/LoxAPP3.json",
        "jdev/sps/enablebinstatusupdate",
    ]
    # Only the auth commands are encrypted (enc, never fenc).
    assert [c.startswith("jdev/sys/enc/") for c in pair.sent] == [False, True, True] + [False] * 3

    assert pair.run([pair.client.keepalive_command()]) == [KeepaliveReceived()]


def test_unchanged_structure_is_not_downloaded() -> None:
    cached = SimulatedMiniserver.generate(6, seed=11).last_modified
    pair = connect(cached_last_modified=cached)
    events = pair.start()
    assert kinds(events) == [
        TokenAcquired,
        Authenticated,
        StructureUnchanged,
        UpdatesEnabled,
        *TABLE_TYPES,
    ]
    assert of_type(events, StructureUnchanged) == [StructureUnchanged(cached)]
    assert "data/LoxAPP3.json" not in pair.commands()


def test_changed_structure_is_downloaded() -> None:
    pair = connect(cached_last_modified="2001-01-01 00:00:00")
    events = pair.start()
    (loaded,) = of_type(events, StructureLoaded)
    assert loaded.last_modified == pair.miniserver.last_modified
    assert "data/LoxAPP3.json" in pair.commands()


def test_stored_token_authenticates_without_getjwt() -> None:
    first, stored = streaming(SHA256_USER)
    second = connect(SHA256_USER, accounts=first.accounts, stored_token=stored)
    events = second.start()

    assert kinds(events) == [Authenticated, StructureLoaded, UpdatesEnabled, *TABLE_TYPES]
    (authenticated,) = of_type(events, Authenticated)
    assert authenticated.via_token is True
    assert authenticated.token.token is None
    commands = second.commands()
    assert [c.split("/")[0] for c in commands[1:3]] == ["jdev", "authwithtoken"]
    assert not any(c.startswith("jdev/sys/getjwt/") for c in commands)
    assert second.server.token == stored.token
    assert authenticated.token.valid_until_unix >= stored.valid_until_unix


@pytest.mark.parametrize(("spoil", "code"), [("expire", 477), ("unknown", 401)])
def test_refused_stored_token_falls_back_to_getjwt_on_the_same_socket(
    spoil: str, code: int
) -> None:
    first, acquired = streaming()
    stored = acquired
    if spoil == "expire":
        first.accounts.expire_all()
    else:
        stored = attrs.evolve(stored, token="never-issued")
    second = connect(accounts=first.accounts, stored_token=stored)
    events = second.start()

    assert kinds(events)[:3] == [TokenRejected, TokenAcquired, Authenticated]
    assert of_type(events, TokenRejected) == [TokenRejected(code)]
    (new,) = of_type(events, TokenAcquired)
    assert new.token.token != acquired.token
    commands = second.commands()
    verbs = [c.split("/")[2] if c.startswith("jdev/") else c.split("/")[0] for c in commands[:5]]
    assert verbs == ["keyexchange", "getkey2", "authwithtoken", "getkey2", "getjwt"]
    assert second.client.state is ClientState.STREAMING
    assert len(second.closes) == 0


@pytest.mark.parametrize("user", [SHA1_USER, SHA256_USER], ids=["SHA1", "SHA256"])
def test_wrong_password_is_an_authentication_failure(user: User) -> None:
    pair = connect(User(user.name, "wrong password", user.hash_algorithm))
    events = pair.start()
    assert without_commands(events) == [
        SessionFailed("getjwt refused with code 401", code=401, auth_failure=True)
    ]
    assert pair.client.state is ClientState.ERROR
    assert "wrong password" not in repr(pair.client)
    with pytest.raises(LocalProtocolError):
        pair.client.receive(build_header(MessageIdentifier.KEEPALIVE, 0))
    with pytest.raises(LocalProtocolError):
        pair.client.keepalive_command()
    pair.client.close()
    assert pair.client.state is ClientState.ERROR  # sticky


def test_unknown_user_is_an_authentication_failure() -> None:
    pair = connect(User("mallory", "x" * 10))
    (failed,) = of_type(pair.start(), SessionFailed)
    assert failed.auth_failure
    assert failed.code == 401


def test_tables_before_the_enable_reply_are_delivered_after_it() -> None:
    pair = connect(server_options={"tables_before_ack": True})
    events = pair.start()
    assert kinds(events)[-5:] == [UpdatesEnabled, *TABLE_TYPES]
    assert without_commands(events)[-4:] == decoded_full_tables(pair.miniserver)


def test_tables_before_the_structure_are_held_and_delivered_in_order() -> None:
    pair = connect(server_options={"tables_before_ack": True})
    injected: dict[str, float] = {"jdev/sps/LoxAPPversion3": 1.0, "data/LoxAPP3.json": 2.0}

    def inject(command: str) -> list[SessionEvent]:
        value = injected.get(command)
        return [] if value is None else feed(pair.client, table_messages(value))

    pair.before_command = inject
    events = pair.start()
    assert kinds(events)[-7:] == [
        UpdatesEnabled,
        ValueStatesReceived,
        ValueStatesReceived,
        *TABLE_TYPES,
    ]
    early = of_type(events, ValueStatesReceived)
    assert [table.states[0][1] for table in early[:2]] == [1.0, 2.0]
    assert without_commands(events)[-4:] == decoded_full_tables(pair.miniserver)


def test_tables_while_streaming_pass_straight_through() -> None:
    pair, _ = streaming()
    for identifier, payload in pair.miniserver.step(50):
        events = feed(pair.client, frame_binary_message(identifier, payload))
        assert len(events) == 1
        assert isinstance(events[0], TABLE_TYPES)


def test_token_refresh_yields_a_new_token_and_can_rotate_the_salt() -> None:
    pair, acquired = streaming()
    commands = pair.client.request_token_refresh(acquired)
    assert pair.client.token_operation is TokenOperation.REFRESHING
    assert [plain(c) for c in commands] == ["jdev/sys/getkey2/alice"]
    events = pair.run(commands)
    (event,) = without_commands(events)
    assert isinstance(event, TokenAcquired)
    refreshed = event.token
    assert refreshed.token != acquired.token
    assert pair.server.token == refreshed.token
    assert pair.client.token_operation is TokenOperation.NONE
    assert pair.client.state is ClientState.STREAMING
    assert pair.commands()[-1].startswith("jdev/sys/refreshjwt/")

    # Again, rotating the salt: the server insists on nextSalt/{current}/{next} and then {next}.
    commands = pair.client.request_token_refresh(refreshed, next_salt="c0ffee")
    first = decode_encrypted_command(commands[0], SESSION_KEY)
    assert (first.salt, first.next_salt) == (SALT, "c0ffee")
    (again,) = without_commands(pair.run(commands))
    assert isinstance(again, TokenAcquired)
    assert again.token.token not in (acquired.token, refreshed.token)
    assert decode_encrypted_command(pair.sent[-1], SESSION_KEY).salt == "c0ffee"


def test_refused_refresh_drops_the_token_but_keeps_streaming() -> None:
    pair, acquired = streaming()
    pair.accounts.expire_all()
    events = pair.run(pair.client.request_token_refresh(acquired))
    assert without_commands(events) == [TokenRejected(477)]
    assert pair.client.state is ClientState.STREAMING
    assert pair.client.token_operation is TokenOperation.NONE
    assert pair.run([pair.client.keepalive_command()]) == [KeepaliveReceived()]


def test_kill_token_closes_the_session() -> None:
    pair, acquired = streaming()
    commands = pair.client.kill_token_commands(acquired)
    assert pair.client.token_operation is TokenOperation.KILLING
    events = pair.run(commands)
    assert without_commands(events) == [TokenKilled(200)]
    assert pair.client.state is ClientState.CLOSED
    assert pair.closes == [Close(1000, "token killed")]
    assert pair.accounts.lookup(acquired.token, NOW) is None
    assert pair.commands()[-1].startswith("jdev/sys/killtoken/")
    with pytest.raises(LocalProtocolError):
        pair.client.receive(build_header(MessageIdentifier.KEEPALIVE, 0))


# --- firmware eras (protocol doc §4.1, §4.2) ------------------------------------------------


def old_firmware(
    version: str,
    user: User = SHA256_USER,
    *,
    accounts: Accounts | None = None,
    **client_options: object,
) -> Pair:
    """A client of the era ``login_era(version)`` against a server playing ``version``."""
    if accounts is None:
        accounts = Accounts(
            [SHA1_USER, SHA256_USER], omit_hash_alg=True, random_bytes=counter_random
        )
    return connect(
        user,
        accounts=accounts,
        server_options={"firmware": Firmware.of(version)},
        era=login_era(version),
        **client_options,
    )


def test_hash_login_on_firmware_9_1_needs_no_key_exchange_and_gives_no_token() -> None:
    pair = old_firmware("9.1.10.30", public_key_text=None, session_key=None, salt=None)
    events = pair.start()
    assert kinds(events) == [Authenticated, StructureLoaded, UpdatesEnabled, *TABLE_TYPES]
    assert of_type(events, Authenticated) == [Authenticated(None, via_token=False)]
    assert pair.client.state is ClientState.STREAMING
    key_reply, login = pair.sent[:2]
    assert key_reply == "jdev/sys/getkey"
    assert login.startswith("authenticate/")
    assert not any(is_encrypted_command(c) for c in pair.sent)
    with pytest.raises(LocalProtocolError, match="no token"):
        pair.client.request_token_refresh(STORED)


def test_hash_login_hashes_user_and_password_with_the_one_time_key() -> None:
    # The known answer: HMAC-SHA1 keyed with the decoded key, of "user:password" (§4.1, §8.4).
    key = "33323346364341453435414635323433344239343045334230344143334133304443434544304538"
    assert legacy_hash("user", "29798721D364CF650CC24C3C2B8F6CF5F73C204C", key) == (
        "e3f9c5020c414d7601ae2b44d329bd97d9bb5b8c"
    )


def test_hash_login_with_a_wrong_password_is_an_authentication_failure() -> None:
    pair = old_firmware("9.1.10.30", User(SHA256_USER.name, "wrong", HashAlgorithm.SHA1))
    failed = failure(pair.start())
    assert (failed.code, failed.auth_failure) == (401, True)


def test_firmware_10_0_logs_in_with_gettoken_and_refreshes_with_refreshtoken() -> None:
    pair = old_firmware("10.0.9.3")
    events = pair.start()
    assert pair.client.state is ClientState.STREAMING, events
    (acquired,) = of_type(events, TokenAcquired)
    assert acquired.token.hash_algorithm is HashAlgorithm.SHA1  # no hashAlg before 10.4
    assert any(c.startswith("jdev/sys/gettoken/") for c in pair.commands())
    (refreshed,) = without_commands(pair.run(pair.client.request_token_refresh(acquired.token)))
    assert isinstance(refreshed, TokenAcquired)
    assert pair.commands()[-1].startswith("jdev/sys/refreshtoken/")
    assert pair.server.token == refreshed.token.token

    again = old_firmware("10.0.9.3", accounts=pair.accounts, stored_token=refreshed.token)
    assert kinds(again.start())[0] is Authenticated  # authwithtoken, no second gettoken
    assert not any(c.startswith("jdev/sys/gettoken/") for c in again.commands())


@pytest.mark.parametrize(
    ("version", "era", "refused"),
    [
        ("10.0.9.3", LoginEra.JWT, "jdev/sys/getjwt/"),  # getjwt came with 10.1.12.5
        ("15.3.10.21", LoginEra.HASH, "authenticate/"),  # the hash login went with 9.3
    ],
)
def test_a_login_the_firmware_does_not_know_is_refused_as_a_real_one_refuses_it(
    version: str, era: LoginEra, refused: str
) -> None:
    accounts = Accounts([SHA1_USER, SHA256_USER], omit_hash_alg=True, random_bytes=counter_random)
    pair = connect(
        SHA256_USER, accounts=accounts, server_options={"firmware": Firmware.of(version)}, era=era
    )
    failed = failure(pair.start())
    assert failed.code == 400  # before authentication an unknown command is a bad request
    assert pair.commands()[-1].startswith(refused)


@pytest.mark.parametrize(
    ("value", "code", "reason"),
    [
        ({"key": "41"}, 200, "getkey reply: the key must be a string"),
        ("", 401, "getkey refused"),
    ],
)
def test_a_getkey_reply_that_gives_no_key_fails_the_hash_login(
    value: object, code: int, reason: str
) -> None:
    script = Script(era=LoginEra.HASH)
    assert script.last == "jdev/sys/getkey"
    failed = failure(script.answer(value, code))
    assert reason in failed.reason
    assert failed.auth_failure is (code == 401)


def test_a_hash_login_takes_no_stored_token() -> None:
    with pytest.raises(ValueError, match="no token"):
        make_client(era=LoginEra.HASH, stored_token=STORED)


def test_login_in_clear_over_tls() -> None:
    pair = connect(
        SHA256_USER,
        server_options={"tls": True},
        tls=True,
        public_key_text=None,
        session_key=None,
        salt=None,
    )
    events = pair.start()
    assert pair.client.state is ClientState.STREAMING, events
    assert not any(is_encrypted_command(c) for c in pair.sent)
    assert pair.sent[0] == "jdev/sys/getkey2/b%C3%B8b%2Fx"
    assert pair.sent[1].startswith("jdev/sys/getjwt/")
    (acquired,) = of_type(events, TokenAcquired)
    (refreshed,) = without_commands(pair.run(pair.client.request_token_refresh(acquired.token)))
    assert isinstance(refreshed, TokenAcquired)
    with pytest.raises(ValueError, match="next_salt"):
        pair.client.request_token_refresh(refreshed.token, next_salt="beef")
    assert pair.client.state is ClientState.STREAMING  # a bad argument changes nothing


def test_keyexchange_with_a_stale_public_key_fails() -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = other.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    pair = connect(public_key_text=pem.decode())
    assert without_commands(pair.start()) == [
        SessionFailed("keyexchange refused with code 401", code=401, auth_failure=False)
    ]


def test_auth_timeout_ends_the_session() -> None:
    pair = connect()
    pair.client.start()  # the keyexchange is never delivered
    events: list[SessionEvent] = []
    for output in pair.server.on_auth_timeout():
        if isinstance(output, Send):
            events += feed(pair.client, output.messages)
    assert events == [SessionFailed("not authenticated in time", code=420)]


def test_out_of_service_while_streaming_closes_the_session() -> None:
    pair, _ = streaming()
    events = pair.client.receive(build_header(MessageIdentifier.OUT_OF_SERVICE, 0))
    assert events == [OutOfService()]
    assert pair.client.state is ClientState.CLOSED
    pair.client.close()
    assert pair.client.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        pair.client.receive(build_header(MessageIdentifier.KEEPALIVE, 0))
    assert pair.client.state is ClientState.ERROR  # feeding a closed session is a caller bug


def test_unsolicited_replies_while_streaming_are_reported_not_fatal() -> None:
    pair, _ = streaming()
    reply_text = encode_ll_reply("dev/sps/io/lamp/on", "1")
    events = feed(pair.client, frame_text_message(MessageIdentifier.TEXT, reply_text))
    (unexpected,) = events
    assert isinstance(unexpected, UnexpectedReply)
    assert unexpected.reply is not None
    assert unexpected.reply.control == "dev/sps/io/lamp/on"

    events = feed(pair.client, frame_text_message(MessageIdentifier.TEXT, "not json"))
    assert events == [UnexpectedReply("not json", None)]
    events = feed(pair.client, frame_binary_message(MessageIdentifier.FILE, b"\x89PNG"))
    assert events == [UnexpectedReply(b"\x89PNG", None)]
    assert pair.client.state is ClientState.STREAMING


def test_unrelated_reply_during_a_refresh_leaves_the_refresh_in_flight() -> None:
    pair, acquired = streaming()

    def interleave(command: str) -> list[SessionEvent]:
        if not plain(command).startswith("jdev/sys/refreshjwt/"):
            return []
        strangers = [
            encode_ll_reply("dev/sps/io/lamp/on", "1"),
            encode_ll_reply("jdev/sys/enc/AAAA", "", 401),  # an echo we cannot decrypt
        ]
        messages = [m for text in strangers for m in frame_text_message(TEXT, text)]
        return feed(pair.client, messages)

    pair.before_command = interleave
    events = pair.run(pair.client.request_token_refresh(acquired))
    assert kinds(events) == [UnexpectedReply, UnexpectedReply, TokenAcquired]


# --- a scripted Miniserver for what the simulator does not do ---------------------------------

KEY_HEX = "41" * 20
KEY_VALUE = {"key": KEY_HEX, "salt": "3132", "hashAlg": "SHA256"}
TOKEN_VALUE = {"token": "tok", "key": KEY_HEX, "validUntil": 500_000_000, "tokenRights": 4}
VALIDITY_VALUE = {"validUntil": 500_000_000, "tokenRights": 4, "unsecurePass": False}
STORED = StoredToken(
    token="stored", valid_until=1, hash_algorithm=HashAlgorithm.SHA1, client_uuid=CLIENT_UUID
)


class Script:
    """A client driven by hand: ``answer`` replies to the command in flight."""

    def __init__(self, **options: object) -> None:
        options.setdefault("tls", True)
        self.client = make_client(**options)
        self.last = self.client.start()[0]

    def answer(
        self, value: object = "", code: int = 200, *, control: str | None = None
    ) -> list[SessionEvent]:
        text = encode_ll_reply(self.last if control is None else control, value, code)
        return self.feed(frame_text_message(MessageIdentifier.TEXT, text))

    def feed(self, messages: Iterable[bytes | str]) -> list[SessionEvent]:
        events = feed(self.client, messages)
        commands = of_type(events, SendCommand)
        if commands:
            self.last = commands[-1].text
        return events

    def login(self) -> None:
        self.answer(KEY_VALUE)
        self.answer(TOKEN_VALUE)

    def to_streaming(self) -> None:
        self.login()
        self.answer("2024-01-01 00:00:00")
        self.feed(frame_text_message(MessageIdentifier.FILE, "{}"))
        self.answer("1")
        assert self.client.state is ClientState.STREAMING


def failure(events: Sequence[SessionEvent]) -> SessionFailed:
    assert isinstance(events[-1], SessionFailed), events
    return events[-1]


@pytest.mark.parametrize(
    ("code", "auth_failure"), [(401, True), (403, True), (423, True), (404, False), (500, False)]
)
def test_refused_getkey2(code: int, auth_failure: bool) -> None:
    script = Script()
    failed = failure(script.answer("", code))
    assert (failed.code, failed.auth_failure) == (code, auth_failure)
    assert (code in AUTH_FAILURE_CODES) is auth_failure


def test_malformed_getkey2_value_fails_without_quoting_it() -> None:
    script = Script()
    failed = failure(script.answer("key=SECRETKEY"))
    assert failed.code is None
    assert "SECRETKEY" not in failed.reason


@pytest.mark.parametrize(("code", "auth_failure"), [(423, True), (400, False)])
def test_refused_authwithtoken_other_than_401_or_477_fails(code: int, auth_failure: bool) -> None:
    script = Script(stored_token=STORED)
    script.answer(KEY_VALUE)
    assert script.last.startswith("authwithtoken/")
    failed = failure(script.answer("", code))
    assert (failed.code, failed.auth_failure) == (code, auth_failure)


def test_getjwt_reply_without_a_token_fails() -> None:
    script = Script()
    script.answer(KEY_VALUE)
    failed = failure(script.answer(VALIDITY_VALUE))
    assert failed.reason == "getjwt reply carries no token"


def test_getjwt_reply_value_may_be_json_text() -> None:
    script = Script()
    script.answer(KEY_VALUE)
    events = script.answer('{"token":"t","validUntil":"7","tokenRights":4}')
    (acquired,) = of_type(events, TokenAcquired)
    assert (acquired.token.token, acquired.token.valid_until) == ("t", 7)
    assert acquired.token.hash_algorithm is HashAlgorithm.SHA256


@pytest.mark.parametrize(("value", "code"), [(["2024"], 200), ("", 500)])
def test_bad_version_reply_fails(value: object, code: int) -> None:
    script = Script()
    script.login()
    failed = failure(script.answer(value, code))
    assert failed.code == (None if code == 200 else code)


def test_version_is_compared_without_surrounding_space() -> None:
    script = Script(cached_last_modified="2024-01-01 00:00:00")
    script.login()
    events = script.answer(" 2024-01-01 00:00:00\n")
    assert of_type(events, StructureUnchanged) == [StructureUnchanged("2024-01-01 00:00:00")]


@pytest.mark.parametrize(
    "messages",
    [
        frame_binary_message(MessageIdentifier.FILE, '{"x": "ü"}'.encode()),
        frame_text_message(MessageIdentifier.TEXT, '{"x": "ü"}'),  # text header, then the file
        frame_text_message(MessageIdentifier.FILE, '{"x": "ü"}', estimated_length=4),
    ],
    ids=["binary", "text-header", "estimated"],
)
def test_structure_file_forms(messages: list[bytes | str]) -> None:
    script = Script()
    script.login()
    script.answer("v1")
    events = script.feed(messages)
    assert events[0] == StructureLoaded('{"x": "ü"}', "v1")
    assert "ü" not in repr(events[0])
    assert script.client.state is ClientState.ENABLING_UPDATES


@pytest.mark.parametrize(
    ("messages", "code"),
    [
        (frame_binary_message(MessageIdentifier.FILE, b"\xff\xfe"), None),
        (frame_text_message(TEXT, encode_ll_reply("data/LoxAPP3.json", "", 404)), 404),
        (frame_text_message(TEXT, encode_ll_reply("data/LoxAPP3.json", "{}")), None),
    ],
    ids=["not-utf8", "refused", "ll-instead-of-file"],
)
def test_structure_file_failures(messages: list[bytes | str], code: int | None) -> None:
    script = Script()
    script.login()
    script.answer("v1")
    assert failure(script.feed(messages)).code == code


def test_refused_enable_fails() -> None:
    script = Script()
    script.login()
    script.answer("v1")
    script.feed(frame_text_message(MessageIdentifier.FILE, "{}"))
    assert failure(script.answer("", 400)).code == 400


def test_replies_are_matched_by_order_and_by_echo() -> None:
    script = Script()
    # A stray reply with a foreign echo while getkey2 is in flight: reported, still waiting.
    events = script.answer("x", control="dev/sps/io/foo/on")
    assert kinds(events) == [UnexpectedReply]
    assert script.client.state is ClientState.AUTHENTICATING
    # An empty echo is matched by order; a dev/ spelling and percent-encoding are accepted.
    script.answer(KEY_VALUE, control="")
    events = script.answer(TOKEN_VALUE, control="dev/sys/getjwt/%61bc")
    assert kinds(events) == [TokenAcquired, Authenticated]


def test_refresh_reply_without_a_token_renews_the_one_handed_over() -> None:
    script = Script()
    script.to_streaming()
    script.last = script.client.request_token_refresh(STORED)[0]
    script.answer(KEY_VALUE)
    assert script.last.startswith("jdev/sys/refreshjwt/")
    events = script.answer(VALIDITY_VALUE)
    (acquired,) = events
    assert isinstance(acquired, TokenAcquired)
    assert (acquired.token.token, acquired.token.valid_until) == ("stored", 500_000_000)
    assert acquired.token.hash_algorithm is HashAlgorithm.SHA256  # of this getkey2


def test_refused_getkey2_during_a_refresh_fails() -> None:
    script = Script()
    script.to_streaming()
    script.last = script.client.request_token_refresh(STORED)[0]
    assert failure(script.answer("", 500)).code == 500


def test_refused_kill_still_closes() -> None:
    script = Script()
    script.to_streaming()
    script.last = script.client.kill_token_commands(STORED)[0]
    script.answer(KEY_VALUE)
    assert script.last.startswith("jdev/sys/killtoken/")
    assert script.answer("", 401) == [TokenKilled(401)]
    assert script.client.state is ClientState.CLOSED


def test_keepalive_during_the_handshake_passes_through() -> None:
    script = Script()
    assert script.client.keepalive_command() == "keepalive"
    assert script.feed([build_header(MessageIdentifier.KEEPALIVE, 0)]) == [KeepaliveReceived()]
    assert script.client.state is ClientState.AUTHENTICATING


@pytest.mark.parametrize(
    "messages",
    [
        table_messages(1.0),  # a table before authentication
        ["text without a header"],
        [b"\x03\x02"],  # a truncated header
    ],
    ids=["early-table", "no-header", "short-header"],
)
def test_remote_protocol_errors_become_session_failed(messages: list[bytes | str]) -> None:
    script = Script()
    failed = failure(script.feed(messages))
    assert failed.code is None
    assert not failed.auth_failure
    assert script.client.state is ClientState.ERROR


def test_out_of_service_during_the_handshake_releases_held_tables() -> None:
    script = Script()
    script.login()
    script.answer("v1")
    script.feed(table_messages(5.0))
    events = script.feed([build_header(MessageIdentifier.OUT_OF_SERVICE, 0)])
    assert kinds(events) == [ValueStatesReceived, OutOfService]
    assert script.client.state is ClientState.CLOSED


def test_failure_releases_held_tables_first() -> None:
    script = Script()
    script.login()
    script.feed(table_messages(3.0))
    events = script.answer("", 500)
    assert kinds(events) == [ValueStatesReceived, SessionFailed]


# --- local misuse ------------------------------------------------------------------------------


def test_receive_before_start_is_a_local_error_and_sticky() -> None:
    client = make_client()
    with pytest.raises(LocalProtocolError, match="RECEIVE is not allowed in state IDLE"):
        client.receive(b"")
    assert client.state is ClientState.ERROR
    with pytest.raises(LocalProtocolError):
        client.start()


def test_start_twice_is_a_local_error() -> None:
    client = make_client()
    client.start()
    with pytest.raises(LocalProtocolError):
        client.start()
    assert client.state is ClientState.ERROR


def test_keepalive_before_start_is_a_local_error() -> None:
    with pytest.raises(LocalProtocolError):
        make_client().keepalive_command()


@pytest.mark.parametrize("method", ["request_token_refresh", "kill_token_commands"])
def test_token_operations_only_while_streaming(method: str) -> None:
    script = Script()
    script.login()
    assert script.client.state is ClientState.LOADING_STRUCTURE
    with pytest.raises(LocalProtocolError):
        getattr(script.client, method)(STORED)
    assert script.client.state is ClientState.ERROR


@pytest.mark.parametrize("second", ["request_token_refresh", "kill_token_commands"])
def test_one_token_operation_at_a_time(second: str) -> None:
    script = Script()
    script.to_streaming()
    script.client.request_token_refresh(STORED)
    with pytest.raises(LocalProtocolError, match="REFRESHING"):
        getattr(script.client, second)(STORED)
    assert script.client.state is ClientState.ERROR
    assert script.client.token_operation is TokenOperation.NONE


def test_close_from_idle_and_twice() -> None:
    client = make_client()
    client.close()
    client.close()
    assert client.state is ClientState.CLOSED
    with pytest.raises(LocalProtocolError):
        client.start()
    assert client.state is ClientState.ERROR


def test_close_while_streaming() -> None:
    script = Script()
    script.to_streaming()
    script.client.close()
    assert script.client.state is ClientState.CLOSED


# --- construction and reprs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"public_key_text": None}, "required unless tls"),
        ({"session_key": None}, "required unless tls"),
        ({"salt": "a/b"}, "salt"),
        ({"salt": ""}, "salt"),
        ({"client_uuid": ""}, "client_uuid"),
        ({"permission": -1}, "permission"),
        ({"permission": 0x20000}, "permission"),
    ],
)
def test_invalid_arguments(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_client(**options)


def test_empty_user_and_bad_public_key() -> None:
    with pytest.raises(ValueError, match="user"):
        make_client(User("", "pw"))
    with pytest.raises(RemoteProtocolError):
        make_client(public_key_text="-----BEGIN PUBLIC KEY-----AAAA-----END PUBLIC KEY-----")


def test_bad_next_salt_changes_nothing() -> None:
    script = Script(tls=False)
    with pytest.raises(ValueError, match="next_salt"):
        script.client.request_token_refresh(STORED, next_salt="a/b")
    assert script.client.state is ClientState.KEY_EXCHANGE


def test_secrets_stay_out_of_reprs() -> None:
    client = make_client(stored_token=STORED)
    assert "correct horse" not in repr(client)
    assert "alice" in repr(client)
    assert client.user == "alice"
    assert "stored" not in repr(STORED)
    acquired = TokenAcquired(
        StoredToken(
            token="SECRET", valid_until=1, hash_algorithm=HashAlgorithm.SHA1, client_uuid="u"
        )
    )
    assert "SECRET" not in repr(acquired)
    assert repr(SendCommand("jdev/sys/enc/SECRET")) == "SendCommand(text='jdev/sys/enc/…')"
    assert repr(SendCommand("authwithtoken/SECRET/u")) == "SendCommand(text='authwithtoken/…')"
    assert repr(SendCommand("keepalive")) == "SendCommand(text='keepalive')"
    assert "SECRET" not in repr(UnexpectedReply("SECRET", None))


def test_token_refresh_delay() -> None:
    assert token_refresh_delay(NOW + 1000, NOW) == 500.0
    assert token_refresh_delay(NOW + 30 * 86400, NOW) == 86400.0
    assert token_refresh_delay(NOW - 5, NOW) == 0.0
    assert token_refresh_delay(NOW + 1000, NOW, fraction=1.0, max_delay_seconds=100) == 100
    with pytest.raises(ValueError, match="fraction"):
        token_refresh_delay(NOW, NOW, fraction=0)


# --- the tables themselves -------------------------------------------------------------------


def test_terminal_states_allow_nothing_but_close() -> None:
    for state in (ClientState.CLOSED, ClientState.ERROR):
        steps = {step for (s, step) in TRANSITIONS if s is state}
        assert steps == {Step.CLOSE}
    assert TRANSITIONS[ClientState.ERROR, Step.CLOSE] is ClientState.ERROR


def test_every_active_state_can_fail_and_close() -> None:
    active = set(ClientState) - {ClientState.IDLE, ClientState.CLOSED, ClientState.ERROR}
    for state in active:
        assert TRANSITIONS[state, Step.FAILED] is ClientState.ERROR
        assert TRANSITIONS[state, Step.OUT_OF_SERVICE] is ClientState.CLOSED
        assert TRANSITIONS[state, Step.RECEIVE] is state


def test_token_operation_steps_exist_in_streaming() -> None:
    for _operation, step in TOKEN_OPERATION_TRANSITIONS:
        assert (ClientState.STREAMING, step) in TRANSITIONS


def test_remote_illegal_step_raises_remote_error_without_changing_state() -> None:
    lifecycle = Lifecycle()
    with pytest.raises(RemoteProtocolError):
        lifecycle.advance(Step.STATE_TABLE, remote=True)
    assert lifecycle.state is ClientState.IDLE
    assert repr(lifecycle) == "<Lifecycle IDLE token_operation=NONE>"


# --- whatever the Miniserver sends ------------------------------------------------------------

CONTROLS = [
    "",
    "dev/sys/getkey2/alice",
    "jdev/sys/getkey2/alice",
    "jdev/sys/enc/AAAA",
    "dev/sys/getjwt/x",
    "authwithtoken/x/alice",
    "dev/sps/LoxAPPversion3",
    "data/LoxAPP3.json",
    "dev/sps/enablebinstatusupdate",
    "jdev/sys/refreshjwt/x",
    "jdev/sys/killtoken/x",
]
VALUE_KEYS = ["key", "salt", "hashAlg", "token", "validUntil", "tokenRights", "unsecurePass"]
values = st.one_of(
    st.text(max_size=12),
    st.dictionaries(
        st.sampled_from(VALUE_KEYS),
        st.one_of(st.text(max_size=8), st.integers(), st.none(), st.just("41" * 20)),
    ),
)
ll_texts = st.builds(
    encode_ll_reply,
    st.sampled_from(CONTROLS),
    values,
    st.sampled_from([200, 400, 401, 420, 423, 477, 500]),
)
headers = st.builds(
    build_header,
    st.sampled_from(MessageIdentifier),
    st.integers(min_value=0, max_value=48),
    estimated=st.booleans(),
)
framed = st.one_of(
    ll_texts.map(lambda text: frame_text_message(MessageIdentifier.TEXT, text)),
    st.tuples(st.sampled_from(MessageIdentifier), st.binary(max_size=48)).map(
        lambda pair: frame_binary_message(*pair)
    ),
)
server_messages = st.lists(
    st.one_of(
        st.binary(max_size=48).map(lambda data: [data]),
        st.text(max_size=48).map(lambda text: [text]),
        headers.map(lambda header: [header]),
        ll_texts.map(lambda text: [text]),
        framed,
    ),
    max_size=12,
).map(lambda groups: [message for group in groups for message in group])

ENDINGS = (SessionFailed, OutOfService, TokenKilled)


def feed_until_the_end(client: ClientSession, messages: list[bytes | str]) -> None:
    for message in messages:
        events = client.receive(message)
        for event in events:
            assert isinstance(event, get_args(SessionEvent))
        if any(isinstance(event, ENDINGS) for event in events):
            assert client.state in (ClientState.CLOSED, ClientState.ERROR)
            return
        assert client.state not in (ClientState.CLOSED, ClientState.ERROR)


@given(server_messages, st.booleans())
def test_arbitrary_messages_to_a_fresh_session_never_raise(
    messages: list[bytes | str], stored: bool
) -> None:
    client = make_client(tls=True, stored_token=STORED if stored else None)
    client.start()
    feed_until_the_end(client, messages)


@given(server_messages, st.sampled_from(["none", "refresh", "kill"]))
def test_arbitrary_messages_to_a_streaming_session_never_raise(
    messages: list[bytes | str], operation: str
) -> None:
    script = Script(tls=False)
    script.answer("")  # keyexchange
    script.to_streaming()
    if operation == "refresh":
        script.client.request_token_refresh(STORED)
    elif operation == "kill":
        script.client.kill_token_commands(STORED)
    feed_until_the_end(script.client, messages)
