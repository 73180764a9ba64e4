"""The connection task against the simulator: login, streaming, failures, reconnects.

Over real loopback sockets where time does not matter, and over in-memory streams on trio's
autojump clock where it does (keepalive, silence, booting), so every timer is checked to the
second without waiting for it.
"""

from __future__ import annotations

import json
import logging
import re
from functools import partial
from typing import Any

import pytest
import trio
from connection_harness import (
    USERS,
    config_for,
    in_memory,
    lost,
    new_server,
    running,
    start_simulator,
    status,
    table,
)

from loxone_trio_exporter.protocol import (
    DaytimerStatesReceived,
    TextStatesReceived,
    ValueStatesReceived,
    WeatherStatesReceived,
)
from loxone_trio_exporter.runtime._connection import Timeouts
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)
from loxone_trio_exporter.runtime._session import describe_changes
from loxone_trio_exporter.simulator import (
    Fault,
    FaultKind,
    SimulatedMiniserver,
    SimulatedServer,
    User,
)
from loxone_trio_exporter.structure import layout_structure


@pytest.fixture
def server() -> SimulatedServer:
    return new_server()


# --- real sockets --------------------------------------------------------------------------------


@pytest.mark.parametrize("user", USERS, ids=["sha256", "sha1"])
async def test_login_streams_every_table_kind(user: User) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            async with running(config_for(server.port, user)) as recorder:
                await recorder.wait_for(status(ConnectionState.STREAMING))
                for kind in (
                    ValueStatesReceived,
                    TextStatesReceived,
                    DaytimerStatesReceived,
                    WeatherStatesReceived,
                ):
                    await recorder.wait_for(table(kind))
                await recorder.wait_for(table(ValueStatesReceived), count=3)  # changes flow
            nursery.cancel_scope.cancel()
    messages = [m for _, m in recorder.messages]
    identified = next(m for m in messages if isinstance(m, MiniserverIdentified))
    assert identified.serial.replace(":", "") == server.model.serial  # apiKey writes colons
    ready = next(m for m in messages if isinstance(m, StructureReady))
    assert ready.last_modified == server.model.last_modified
    assert ready.layout.controls_discovered == len(list(server.model.structure.walk_controls()))
    token = next(m for m in messages if isinstance(m, TokenUpdated))
    assert token.valid_until_unix > server.wall_clock()
    # The order the state owner relies on: structure before streaming, no table before both.
    first_table = next(i for i, m in enumerate(messages) if isinstance(m, TablesReceived))
    assert messages.index(ready) < first_table
    assert not any(isinstance(m, SessionLost) for m in messages)


async def test_wrong_password_is_an_auth_failure_and_retried_with_backoff(
    server, autojump_clock
) -> None:
    config = config_for(80, USERS[0], password="wrong")
    async with in_memory(server, config) as recorder:
        failures = await recorder.wait_for(lost(ReconnectReason.AUTH_FAILED), count=3)
    assert all(f.auth_failure for f in failures)
    assert "authentication failed" in failures[0].detail
    waits = [m.retry_in_seconds for _, m in recorder.messages if status(ConnectionState.WAITING)(m)]
    base = Timeouts().auth_retry_base
    assert base >= 30.0  # never a second login within half a minute (no 4003 block)
    assert base <= waits[0] <= 2 * base  # first step
    assert 2 * base <= waits[1] <= 4 * base  # the ceiling doubled
    times = [t for t, m in recorder.messages if lost(ReconnectReason.AUTH_FAILED)(m)]
    # One login per step: each try comes exactly when its wait is over (virtual time).
    assert times[1] - times[0] == pytest.approx(waits[0], abs=0.5)
    assert times[2] - times[1] == pytest.approx(waits[1], abs=0.5)
    assert server.accounts.logins_failed == 3
    assert not any(status(ConnectionState.STREAMING)(m) for _, m in recorder.messages)


async def test_a_retry_now_ends_the_wait_at_once(server, autojump_clock) -> None:
    config = config_for(80, USERS[0], password="wrong")
    async with in_memory(server, config) as recorder:
        await recorder.wait_for(status(ConnectionState.WAITING))
        asked_at = trio.current_time()
        assert recorder.connection.retry_now()
        await recorder.wait_for(lost(ReconnectReason.AUTH_FAILED), count=2)
        second = recorder.time_of(lost(ReconnectReason.AUTH_FAILED), 1)
    assert second - asked_at < 1.0  # not the 30-60 s the backoff asked for
    assert server.accounts.logins_failed == 2


async def test_nothing_listening_is_unreachable_and_says_where() -> None:
    with trio.socket.socket() as probe:  # a port that is certainly closed
        await probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with trio.fail_after(10):
        async with running(config_for(port, USERS[0])) as recorder:
            (failure,) = await recorder.wait_for(lost(ReconnectReason.UNREACHABLE))
    assert f"127.0.0.1:{port}" in failure.detail
    assert "connection refused: nothing listens there; check host and port" in failure.detail


async def test_a_web_server_that_is_no_miniserver_is_named_as_such() -> None:
    async def not_a_miniserver(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)
        await stream.send_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            (listener,) = await nursery.start(
                partial(trio.serve_tcp, not_a_miniserver, 0, host="127.0.0.1")
            )
            port = listener.socket.getsockname()[1]
            async with running(config_for(port, USERS[0])) as recorder:
                (failure,) = await recorder.wait_for(lost(ReconnectReason.UNREACHABLE))
            nursery.cancel_scope.cancel()
    assert failure.detail == (
        "GET /jdev/cfg/apiKey answered HTTP 404: is this a Miniserver? check host and port"
    )


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(FaultKind.DROP), ReconnectReason.CONNECTION_LOST),
        (Fault(FaultKind.OUT_OF_SERVICE), ReconnectReason.OUT_OF_SERVICE),
        (Fault(FaultKind.CLOSE, code=1000), ReconnectReason.CLOSED),
        (Fault(FaultKind.GARBAGE), ReconnectReason.PROTOCOL_ERROR),
    ],
    ids=["drop", "out_of_service", "close", "garbage"],
)
async def test_recovers_after_a_fault_reusing_token_and_structure(
    fault: Fault, reason: ReconnectReason
) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            async with running(config_for(server.port, USERS[0])) as recorder:
                await recorder.wait_for(status(ConnectionState.STREAMING))
                server.inject(fault)
                (ended,) = await recorder.wait_for(lost(reason))
                await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
            nursery.cancel_scope.cancel()
    assert ended.protocol_error is (reason is ReconnectReason.PROTOCOL_ERROR)
    readies = [m for _, m in recorder.messages if isinstance(m, StructureReady)]
    assert len(readies) == 2
    assert readies[0].layout is readies[1].layout  # LoxAPPversion3 unchanged: reused
    # The second login used the token of the first (authwithtoken), so only one was issued.
    assert len(list(server.accounts.tokens)) == 1
    assert server.accounts.logins_ok == 2


async def test_structure_change_loads_the_new_structure() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            async with running(config_for(server.port, USERS[0])) as recorder:
                await recorder.wait_for(status(ConnectionState.STREAMING))
                before = server.model.last_modified
                server.inject(Fault(FaultKind.STRUCTURE_CHANGE))
                readies = await recorder.wait_for(lambda m: isinstance(m, StructureReady), 2)
            nursery.cancel_scope.cancel()
    assert readies[0].last_modified == before
    assert readies[1].last_modified == server.model.last_modified != before
    assert readies[1].layout is not readies[0].layout


# --- virtual time over in-memory streams -----------------------------------------------------


class KeepaliveWatch:
    """When ``server`` receives a ``keepalive``; it answers at once unless stalled (in-memory
    streams take no time), so these are also the times the client gets its answers."""

    def __init__(self, server: SimulatedServer, monkeypatch: pytest.MonkeyPatch) -> None:
        self.times: list[float] = []
        self._arrived = trio.Event()
        new_session = server.new_session

        def watched_session(*, secure: bool) -> Any:
            session = new_session(secure=secure)
            receive = session.receive

            def watched_receive(text: str, now_unix: float) -> Any:
                if text.lower() == "keepalive":
                    self.times.append(trio.current_time())
                    self._arrived.set()
                return receive(text, now_unix)

            monkeypatch.setattr(session, "receive", watched_receive)
            return session

        monkeypatch.setattr(server, "new_session", watched_session)

    async def next_arrival(self) -> float:
        """Wait for the next keepalive to arrive; when it did."""
        self._arrived = trio.Event()
        await self._arrived.wait()
        return self.times[-1]


async def test_stall_is_detected_by_the_keepalive_timeout(
    server, autojump_clock, monkeypatch
) -> None:
    timeouts = Timeouts()
    keepalives = KeepaliveWatch(server, monkeypatch)
    with trio.fail_after(600):  # virtual seconds
        async with in_memory(server, timeouts=timeouts) as recorder:
            await recorder.wait_for(status(ConnectionState.STREAMING))
            answered_at = await keepalives.next_arrival()
            # The server queued the answer before this task ran: the stall begins just after a
            # keepalive was answered.
            server.inject(Fault(FaultKind.STALL, seconds=1000))
            await recorder.wait_for(lost(ReconnectReason.KEEPALIVE_TIMEOUT))
    detected = recorder.time_of(lost(ReconnectReason.KEEPALIVE_TIMEOUT))
    # The next keepalive goes out keepalive_interval after the answer, and is late
    # keepalive_answer after that (the autojump clock lands on each deadline; approx only for
    # the rounding of the float additions).
    next_sent = next(t for t in keepalives.times if t > answered_at)
    next_keepalive = answered_at + timeouts.keepalive_interval
    assert next_sent == pytest.approx(next_keepalive, abs=1e-9)
    assert detected == pytest.approx(next_keepalive + timeouts.keepalive_answer, abs=1e-9)
    assert not any(isinstance(m, SessionLost) for t, m in recorder.messages if t < detected)


async def test_silence_is_detected_when_keepalives_are_far_apart(server, autojump_clock) -> None:
    timeouts = Timeouts(keepalive_interval=1000.0)
    async with in_memory(server, timeouts=timeouts) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.STALL, seconds=1000))
        stalled_at = trio.current_time()
        await recorder.wait_for(lost(ReconnectReason.IDLE_TIMEOUT))
    detected = recorder.time_of(lost(ReconnectReason.IDLE_TIMEOUT))
    assert 60.0 - 0.1 <= detected - stalled_at <= 60.0 + 0.1


async def test_keepalives_keep_a_quiet_session_alive(autojump_clock) -> None:
    quiet = new_server(controls=5, seed=1, rate=0.0)
    async with in_memory(quiet) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        await trio.sleep(600)  # virtual: ten minutes without a single state change
    assert not any(isinstance(m, SessionLost) for _, m in recorder.messages)


async def test_booting_miniserver_is_asked_again_after_5_seconds(server, autojump_clock) -> None:
    server.inject(Fault(FaultKind.BOOT, seconds=12))
    booted_at = trio.current_time()
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
    boots = [t for t, m in recorder.messages if lost(ReconnectReason.BOOTING)(m)]
    assert len(boots) == 3  # at 0, 5 and 10 s; at 15 s it answers
    assert [round(t - booted_at, 1) for t in boots] == [0.0, 5.0, 10.0]
    # The fourth probe gets an answer. (Streaming follows later in virtual time: the structure
    # is parsed in a worker thread, and the autojump clock moves on while it waits for it.)
    answered = recorder.time_of(lambda m: isinstance(m, MiniserverIdentified))
    assert round(answered - booted_at, 1) == 15.0


async def test_an_outage_is_told_once_and_its_end_with_duration_and_tries(
    server, autojump_clock, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="loxone_trio_exporter.session")
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.BOOT, seconds=12))  # cut, then 503 for 12 s
        lost_at = trio.current_time()
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
        back_at = recorder.time_of(status(ConnectionState.STREAMING), 1)
    lines = [r for r in caplog.records if r.name == "loxone_trio_exporter.session"]
    messages = [r.getMessage() for r in lines]
    tries = sum(isinstance(m, SessionLost) for _, m in recorder.messages)
    assert tries >= 3  # the cut, then two or more probes answered 503
    booting = [m for m in messages if "booting (GET /jdev/cfg/apiKey answered 503)" in m]
    assert len(booting) == 1  # told once, not once per probe
    (again,) = [r for r in lines if getattr(r, "event", None) == "streaming_again"]
    first = next(r for r in lines if getattr(r, "event", None) == "session_lost")
    assert again.getMessage() == (
        f"miniserver home: streaming again after {back_at - lost_at:.1f} s "
        f"({first.reason}; {tries} failed tries)"
    )
    assert (again.miniserver, again.reason) == ("home", first.reason)
    assert messages.count("miniserver home: streaming") == 1  # the first start only


class SlowLink(trio.abc.Stream):
    """A link of 16 KiB per 0.1 s (virtual time): a large structure file takes a while."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        await trio.sleep(0.1)
        return await self._stream.receive_some(16 * 1024)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()


async def test_a_slow_structure_download_tells_its_progress(autojump_clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="loxone_trio_exporter.session")
    large = new_server(controls=2000, rate=0.0)
    size = len(large.model.structure_text().encode())
    async with in_memory(large, wrap=SlowLink) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
    progress = [r for r in caplog.records if getattr(r, "event", None) == "structure_progress"]
    # ~1 MB at 160 KiB/s: a line every 5 s.
    assert size > 800 * 1024  # the test needs a file of more than one line's worth
    assert len(progress) >= size // (16 * 1024 * 50)
    said = [float(r.getMessage().split(": ")[-1].split()[0]) for r in progress]
    assert said == sorted(said)  # it grows
    assert 0 < said[-1] * 1e6 <= size + 1e5
    (loaded,) = [r for r in caplog.records if getattr(r, "event", None) == "structure_loaded"]
    assert re.search(r"loaded \(\d+ controls, \d+ states\)$", loaded.getMessage())


def test_a_changed_structure_says_what_changed() -> None:
    old = layout_structure(SimulatedMiniserver.generate(20, seed=4).structure_text())
    model = SimulatedMiniserver.generate(20, seed=4)
    document = model.document
    controls = document["controls"]
    first, second, *_ = controls
    controls[first]["name"] = "Renamed lamp"
    del controls[second]
    new = layout_structure(json.dumps(document))
    text = describe_changes(old, new)
    assert text.startswith("0 controls added, 1 removed, 1 renamed (")
    assert "-> 'Renamed lamp'" in text


async def test_a_miniserver_back_after_ten_minutes_streams_within_a_minute(
    server, autojump_clock
) -> None:
    down_until = trio.current_time() + 600.0
    async with in_memory(server, reachable=lambda: trio.current_time() >= down_until) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        streaming_at = recorder.time_of(status(ConnectionState.STREAMING))
    tries = [t for t, m in recorder.messages if lost(ReconnectReason.UNREACHABLE)(m)]
    assert len(tries) >= 10  # it kept trying all along
    assert streaming_at - down_until <= 60.0  # the specification's contract
    assert streaming_at - down_until <= Timeouts().reconnect_cap + 1.0  # one wait at most


async def test_backoff_starts_over_after_a_session_that_streamed_a_minute(
    server, autojump_clock
) -> None:
    async with in_memory(server) as recorder:
        await recorder.wait_for(status(ConnectionState.STREAMING))
        server.inject(Fault(FaultKind.DROP))  # after a short session: first step, 1-2 s
        await recorder.wait_for(status(ConnectionState.STREAMING), count=2)
        server.inject(Fault(FaultKind.DROP))  # still short: the ceiling doubles, 2-4 s
        await recorder.wait_for(status(ConnectionState.STREAMING), count=3)
        await trio.sleep(61)  # streams for more than a minute
        server.inject(Fault(FaultKind.DROP))  # a success before it: 1-2 s again
        await recorder.wait_for(status(ConnectionState.WAITING), count=3)
    waits = [m.retry_in_seconds for _, m in recorder.messages if status(ConnectionState.WAITING)(m)]
    assert 1.0 <= waits[0] <= 2.0
    assert 2.0 <= waits[1] <= 4.0
    assert 1.0 <= waits[2] <= 2.0
