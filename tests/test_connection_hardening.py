"""Production hardening of the connection task: close codes and their waits, login limits, the
token store across restarts, token refresh and kill, and TLS (plain, on, auto) to the simulator.

Waits are checked on trio's autojump clock over in-memory streams; TLS over real loopback sockets.
"""

from __future__ import annotations

import itertools
import json
import logging
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from connection_harness import (
    CLIENT_UUID,
    USERS,
    config_for,
    in_memory,
    lost,
    new_server,
    running,
    status,
)

from loxone_trio_exporter.protocol import MessageIdentifier, build_header
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    ReconnectReason,
    SessionLost,
    TokenUpdated,
)
from loxone_trio_exporter.runtime._token_store import TokenStore
from loxone_trio_exporter.simulator import (
    Fault,
    FaultKind,
    SimulatorOptions,
    serve_simulator,
)
from loxone_trio_exporter.simulator._outputs import Send

WALL_START = 1_800_000_000.0  # a fixed "now" for token lifetimes on virtual time


def virtual_wall_clock() -> float:
    return WALL_START + trio.current_time()


def waits(recorder: Any) -> list[float]:
    return [m.retry_in_seconds for _, m in recorder.messages if status(ConnectionState.WAITING)(m)]


# --- close codes and what they make us wait ----------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "reason", "wait"),
    [
        (Fault(FaultKind.CLOSE, code=4003, seconds=42), ReconnectReason.BLOCKED, 42.0),
        (Fault(FaultKind.CLOSE, code=4006), ReconnectReason.USER_DISABLED, 600.0),
        (Fault(FaultKind.CLOSE, code=4007), ReconnectReason.UPDATING, 5.0),
        (Fault(FaultKind.CLOSE, code=4008), ReconnectReason.NO_EVENT_SLOTS, 300.0),
    ],
    ids=["4003", "4006", "4007", "4008"],
)
async def test_close_codes_wait_as_the_miniserver_demands(
    autojump_clock: Any,
    caplog: pytest.LogCaptureFixture,
    fault: Fault,
    reason: ReconnectReason,
    wait: float,
) -> None:
    server = new_server()
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(fault)
        closed_at = trio.current_time()
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
    assert [m.reason for _, m in recorder.messages if isinstance(m, SessionLost)] == [reason]
    assert waits(recorder) == [wait]
    back = recorder.time_of(status(ConnectionState.CONNECTING), 1)
    assert wait <= back - closed_at < wait + 0.5
    if reason in (ReconnectReason.USER_DISABLED, ReconnectReason.BLOCKED):
        assert any(r.levelno == logging.ERROR for r in caplog.records)


async def test_4003_without_seconds_waits_five_minutes(autojump_clock: Any) -> None:
    server = new_server()
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        for client in list(server.clients):
            client.close(4003, "blocked")
        await recorder.wait_for(status(ConnectionState.WAITING))
    assert waits(recorder) == [300.0]


async def test_user_changed_drops_the_token_and_logs_in_again(autojump_clock: Any) -> None:
    server = new_server()
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.CLOSE, code=4005))
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
    assert recorder.messages
    assert server.accounts.logins_ok == 2
    assert len(list(server.accounts.tokens)) == 2  # a second getjwt, not authwithtoken


async def test_refused_logins_back_off_to_ten_minutes_one_login_per_step(
    autojump_clock: Any,
) -> None:
    server = new_server()
    server.inject(Fault(FaultKind.AUTH_FAIL, count=12))
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
    delays = waits(recorder)
    assert len(delays) == 12
    assert server.accounts.logins_failed == 12  # exactly one login per backoff step
    assert all(later >= earlier / 2 for earlier, later in itertools.pairwise(delays))
    assert 300.0 <= max(delays) <= 600.0
    assert min(delays) >= 30.0  # never two logins within half a minute (issue 18)
    assert delays[0] <= 60.0  # the first step: 30-60 s
    failures = [m for _, m in recorder.messages if isinstance(m, SessionLost)]
    assert all(m.reason is ReconnectReason.AUTH_FAILED and m.auth_failure for m in failures)


async def test_a_firmware_update_is_waited_out_by_probing(autojump_clock: Any) -> None:
    server = new_server()
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.BOOT, seconds=20))  # as after 4007: 503 for a while
        server.inject(Fault(FaultKind.CLOSE, code=4007))
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
    reasons = [m.reason for _, m in recorder.messages if isinstance(m, SessionLost)]
    assert reasons[0] in (ReconnectReason.UPDATING, ReconnectReason.CONNECTION_LOST)
    assert ReconnectReason.BOOTING in reasons
    assert server.accounts.logins_ok == 2  # no login was tried while it answered 503


# --- tokens ------------------------------------------------------------------------------------


async def test_a_restart_reuses_the_stored_token(tmp_path: Path, autojump_clock: Any) -> None:
    server = new_server(wall_clock=virtual_wall_clock)
    store = TokenStore(str(tmp_path))
    for _run in range(2):  # two "processes": each a new connection object, one store on disk
        async with in_memory(server, token_store=store, wall_clock=virtual_wall_clock) as rec:
            await rec.wait_for(status(ConnectionState.STREAMING))
    assert server.accounts.logins_ok == 2
    assert len(list(server.accounts.tokens)) == 1  # the second start used authwithtoken
    (token_file,) = (tmp_path / "tokens").iterdir()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tokens").stat().st_mode) == 0o700


async def test_a_token_from_another_installation_is_not_used(
    tmp_path: Path, autojump_clock: Any
) -> None:
    server = new_server(wall_clock=virtual_wall_clock)
    store = TokenStore(str(tmp_path))
    async with in_memory(server, token_store=store, wall_clock=virtual_wall_clock) as rec:
        await rec.wait_for(status(ConnectionState.STREAMING))
    other = CLIENT_UUID.replace("0b7e", "ffff")
    assert store.load("home", USERS[0].name, client_uuid=other) is None
    assert store.load("home", USERS[0].name, client_uuid=CLIENT_UUID) is not None


async def test_the_token_is_refreshed_daily_and_stored(tmp_path: Path, autojump_clock: Any) -> None:
    server = new_server(wall_clock=virtual_wall_clock, tick_seconds=3600.0, rate=0.0)
    store = TokenStore(str(tmp_path))
    async with in_memory(server, token_store=store, wall_clock=virtual_wall_clock) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        started = trio.current_time()
        updates = await recorder.wait_for(lambda m: isinstance(m, TokenUpdated), count=3)
    first, _, refreshed = updates
    assert refreshed.valid_until_unix > first.valid_until_unix
    refreshed_at = recorder.time_of(lambda m: isinstance(m, TokenUpdated), 2)
    # App tokens live 30 days here: half the life is more than a day, so daily wins.
    assert 86400.0 - 1 <= refreshed_at - started <= 86400.0 + 1
    stored = store.load("home", USERS[0].name, client_uuid=CLIENT_UUID)
    assert stored is not None
    assert stored.valid_until_unix == refreshed.valid_until_unix
    assert not any(isinstance(m, SessionLost) for _, m in recorder.messages)


async def test_expired_tokens_are_replaced_by_a_new_login(
    tmp_path: Path, autojump_clock: Any
) -> None:
    server = new_server(wall_clock=virtual_wall_clock)
    store = TokenStore(str(tmp_path))
    async with in_memory(server, token_store=store, wall_clock=virtual_wall_clock) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.TOKEN_EXPIRE))
        server.inject(Fault(FaultKind.DROP))
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
    assert len(list(server.accounts.tokens)) == 2  # authwithtoken refused, then getjwt
    assert [m.reason for _, m in recorder.messages if isinstance(m, SessionLost)] == [
        ReconnectReason.CONNECTION_LOST
    ]


async def test_kill_token_on_exit(tmp_path: Path, autojump_clock: Any) -> None:
    server = new_server(wall_clock=virtual_wall_clock)
    store = TokenStore(str(tmp_path))
    config = attrs.evolve(config_for(80, USERS[0]), kill_token_on_exit=True)
    send, receive = trio.open_memory_channel[Any](1000)
    from loxone_trio_exporter.runtime._connection import MiniserverConnection  # noqa: PLC0415

    async with trio.open_nursery() as nursery:
        nursery.start_soon(server.run_broadcaster)

        async def opener(_transport: object) -> trio.abc.Stream:
            client_stream, server_stream = trio.testing.memory_stream_pair()
            nursery.start_soon(server.handle_connection, server_stream)
            return client_stream

        connection = MiniserverConnection(
            config,
            send,
            client_uuid=CLIENT_UUID,
            token_store=store,
            wall_clock=virtual_wall_clock,
            opener=opener,
        )
        nursery.start_soon(connection.run)
        async for message in receive:
            if status(ConnectionState.STREAMING)(message):
                break
        assert len(list(server.accounts.tokens)) == 1
        connection.stop()
        async for message in receive:
            if status(ConnectionState.STOPPED)(message):
                break
        nursery.cancel_scope.cancel()
    assert list(server.accounts.tokens) == []  # killed at the Miniserver
    assert store.load("home", USERS[0].name, client_uuid=CLIENT_UUID) is None


async def test_stop_without_kill_keeps_the_token(tmp_path: Path, autojump_clock: Any) -> None:
    server = new_server(wall_clock=virtual_wall_clock)
    store = TokenStore(str(tmp_path))
    async with in_memory(server, token_store=store, wall_clock=virtual_wall_clock) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
    assert len(list(server.accounts.tokens)) == 1
    assert store.load("home", USERS[0].name, client_uuid=CLIENT_UUID) is not None
    assert not any(isinstance(m, SessionLost) for _, m in recorder.messages)


# --- TLS to the simulator over real sockets -----------------------------------------------------


async def start_gen2(nursery: trio.Nursery, tmp_path: Path) -> tuple[Any, Path]:
    """A Gen 2 like simulator: plain HTTP/WS on one port, HTTPS/WSS on another."""
    options = SimulatorOptions(
        port=0,
        controls=10,
        rate=20.0,
        users=USERS,
        tls=True,
        tls_port=0,
        tls_cert_file=tmp_path / "miniserver.pem",
    )
    handle = await nursery.start(serve_simulator, options)
    return handle.servers[0], handle.tls_cert_file


@pytest.mark.parametrize("mode", ["auto", "on"])
async def test_tls_with_a_pinned_certificate_checked_against_the_cloud_dns_name(
    tmp_path: Path, mode: str
) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server, cert = await start_gen2(nursery, tmp_path)
            config = attrs.evolve(
                config_for(server.port, USERS[0]),
                tls=mode,
                tls_port=server.tls_port,
                tls_ca_file=str(cert),
            )
            async with running(config) as recorder:
                await recorder.wait_for(status(ConnectionState.STREAMING))
            nursery.cancel_scope.cancel()
    cloud_name = f"127-0-0-1.{server.model.serial.lower()}.dyndns.loxonecloud.com"
    connection_repr = recorder.connection_repr
    assert f"wss://127.0.0.1:{server.tls_port} as {cloud_name}" in connection_repr


async def test_tls_auto_stays_plain_without_https_status(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(
                serve_simulator, SimulatorOptions(port=0, controls=5, users=USERS)
            )
            server = handle.servers[0]
            async with running(attrs.evolve(config_for(server.port, USERS[0]), tls="auto")) as rec:
                await rec.wait_for(status(ConnectionState.STREAMING))
            nursery.cancel_scope.cancel()
    assert f"ws://127.0.0.1:{server.port}" in rec.connection_repr


async def test_tls_with_the_wrong_ca_fails_fast_and_plainly(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server, _cert = await start_gen2(nursery, tmp_path)
            other_dir = tmp_path / "other"
            other_dir.mkdir()
            _other_server, other_cert = await start_gen2(nursery, other_dir)
            config = attrs.evolve(
                config_for(server.port, USERS[0]),
                tls="auto",
                tls_port=server.tls_port,
                tls_ca_file=str(other_cert),
            )
            async with running(config) as recorder:
                started = trio.current_time()
                (failure,) = await recorder.wait_for(lost(ReconnectReason.TLS_ERROR))
                took = trio.current_time() - started
            nursery.cancel_scope.cancel()
    assert took < 2.0  # at once, not after a timeout
    assert "certificate" in failure.detail
    assert "tls_ca_file" in failure.detail
    assert server.accounts.logins_ok == server.accounts.logins_failed == 0  # nothing in clear


async def test_tls_verify_false_accepts_any_certificate(tmp_path: Path) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server, _cert = await start_gen2(nursery, tmp_path)
            config = attrs.evolve(
                config_for(server.port, USERS[0]),
                tls="on",
                tls_port=server.tls_port,
                tls_verify=False,
            )
            async with running(config) as recorder:
                await recorder.wait_for(status(ConnectionState.STREAMING))
            nursery.cancel_scope.cancel()
    assert f"wss://127.0.0.1:{server.tls_port}" in recorder.connection_repr


# --- replies that never come, or come back useless -------------------------------------------


def rewrite_replies(server: Any, rewrite: Callable[[dict[str, Any]], None]) -> None:
    """Make ``server`` pass every JSON reply through ``rewrite`` (which edits it in place)."""
    new_session = server.new_session

    def session(*, secure: bool) -> Any:
        inner = new_session(secure=secure)
        receive = inner.receive

        def rewritten(text: str, now: float) -> list[Any]:
            return [_rewritten_reply(output) for output in receive(text, now)]

        def _rewritten_reply(output: Any) -> Any:
            if not isinstance(output, Send) or len(output.messages) != 2:
                return output
            body = output.messages[1]
            if not isinstance(body, str) or not body.startswith('{"LL"'):
                return output
            reply = json.loads(body)
            rewrite(reply)
            body = json.dumps(reply)
            return Send((build_header(MessageIdentifier.TEXT, len(body.encode())), body))

        inner.receive = rewritten
        return inner

    server.new_session = session


async def test_an_unusable_answer_ends_the_session_after_the_reply_timeout(
    autojump_clock: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # The Miniserver answers keepalives but never usably answers LoxAPPversion3: without a
    # deadline on the reply the session would wait forever, "loading structure".
    server = new_server(rate=0.0, tick_seconds=3600.0)

    def spoil(reply: dict[str, Any]) -> None:
        if str(reply["LL"].get("control", "")).endswith("LoxAPPversion3"):
            reply["LL"]["Code"] = "x"

    rewrite_replies(server, spoil)
    async with in_memory(server) as recorder:
        with trio.fail_after(3600.0):  # virtual: without the deadline it would wait forever
            ended = await recorder.wait_for(lost(ReconnectReason.REPLY_TIMEOUT), count=2)
    assert all("within 30 s" in message.detail for message in ended)
    first = recorder.time_of(status(ConnectionState.LOADING))
    assert 30.0 <= recorder.time_of(lost(ReconnectReason.REPLY_TIMEOUT)) - first < 31.0
    assert not any(status(ConnectionState.STREAMING)(m) for _, m in recorder.messages)
    assert "no usable answer to the last command within 30 s" in caplog.text


async def test_refresh_answers_in_the_past_do_not_start_a_refresh_storm(
    autojump_clock: Any,
) -> None:
    server = new_server(wall_clock=virtual_wall_clock, tick_seconds=3600.0, rate=0.0)
    token_replies: list[float] = []
    storm = trio.Event()  # a storm spins without virtual time passing: stop it by count

    def expire_refreshed_tokens(reply: dict[str, Any]) -> None:
        # The control echo of refreshjwt is encrypted; a token reply is known by its value.
        value = reply["LL"].get("value")
        if isinstance(value, dict) and "validUntil" in value:
            if token_replies:  # every one after getjwt's: refreshjwt
                value["validUntil"] = 0  # 2009, long gone
            token_replies.append(trio.current_time())
            if len(token_replies) > 100:
                storm.set()

    rewrite_replies(server, expire_refreshed_tokens)
    async with in_memory(server, wall_clock=virtual_wall_clock) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        with trio.move_on_after(86400.0 + 600.0):  # the first refresh is due after a day
            await storm.wait()
    refreshes = token_replies[1:]
    assert refreshes, "the token was never refreshed"
    gaps = [later - earlier for earlier, later in itertools.pairwise(refreshes)]
    assert len(refreshes) <= 600.0 / 30.0 + 1
    assert all(gap >= 30.0 for gap in gaps), gaps
