"""``SessionDriver`` over a scripted WebSocket and session: how a streaming session hands tables to
the owner (at once when the owner's queue has room, waiting when not, in order either way) and
when it finds a silent Miniserver out. Virtual time (autojump clock) throughout."""

from __future__ import annotations

from typing import Any

import pytest
import trio

from loxone_trio_exporter.protocol import KeepaliveReceived, ValueStatesReceived
from loxone_trio_exporter.protocol._packed import packed_value_states
from loxone_trio_exporter.runtime._backpressure import TableBudget
from loxone_trio_exporter.runtime._endings import SessionEnded
from loxone_trio_exporter.runtime._messages import ReconnectReason, TablesReceived
from loxone_trio_exporter.runtime._session import SessionDriver, Timeouts, TokenKeeper

_RECORD = 24  # bytes of one value state on the wire


class ScriptedSession:
    """Stands in for a streaming ``ClientSession``: each message is the events it names."""

    awaiting_reply = False

    def start(self) -> list[str]:
        return []

    def receive(self, message: Any) -> list[Any]:
        return list(message)

    def keepalive_command(self) -> str:
        return "keepalive"


class ScriptedWebSocket:
    """``receive`` gives what the test puts in ``feed``; ``send`` keeps what was sent."""

    def __init__(self) -> None:
        self.feed, self._messages = trio.open_memory_channel[Any](100)
        self.sent: list[str] = []

    async def receive(self) -> Any:
        return await self._messages.receive()

    async def send(self, text: str) -> None:
        self.sent.append(text)


def value_table(records: int) -> ValueStatesReceived:
    return ValueStatesReceived(packed_value_states(bytes(_RECORD * records)))


def driver_for(
    *,
    report: Any,
    report_nowait: Any = None,
    budget: TableBudget | None = None,
    timeouts: Timeouts | None = None,
) -> SessionDriver:
    return SessionDriver(
        "home",
        ScriptedSession(),  # type: ignore[arg-type]
        report=report,
        report_nowait=report_nowait,
        tokens=TokenKeeper("home", "user", client_uuid="uuid", store=None),
        structure=None,
        timeouts=timeouts or Timeouts(),
        kill_token_on_stop=False,
        table_budget=budget,
    )


async def test_tables_go_at_once_when_the_queue_has_room_and_wait_when_not(autojump_clock):
    reported: list[tuple[str, int]] = []
    refuse = {2, 4}  # the owner's queue is full for the second and the fourth table

    def report_nowait(message: Any) -> bool:
        assert isinstance(message, TablesReceived)
        if len(message.table.states) in refuse:
            return False
        reported.append(("at once", len(message.table.states)))
        return True

    async def report(message: Any) -> None:
        await trio.sleep(1)  # the owner is behind
        reported.append(("waited", len(message.table.states)))

    budget = TableBudget()
    driver = driver_for(report=report, report_nowait=report_nowait, budget=budget)
    ws = ScriptedWebSocket()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._converse, ws)
        for records in (1, 2, 3, 4, 5):
            await ws.feed.send([value_table(records)])
        await ws.feed.send([KeepaliveReceived(), value_table(6)])
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert reported == [
        ("at once", 1),
        ("waited", 2),
        ("at once", 3),
        ("waited", 4),
        ("at once", 5),
        ("at once", 6),
    ]
    # Each table's bytes are counted once, whichever way it went (none applied here).
    assert budget.in_flight == _RECORD * sum(range(1, 7))


async def test_without_report_nowait_every_table_is_reported_by_waiting(autojump_clock):
    reported: list[TablesReceived] = []

    async def report(message: Any) -> None:
        reported.append(message)

    driver = driver_for(report=report)
    ws = ScriptedWebSocket()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._converse, ws)
        await ws.feed.send([value_table(1)])
        await ws.feed.send([value_table(2)])
        await trio.sleep(1)
        nursery.cancel_scope.cancel()
    assert [len(message.table.states) for message in reported] == [1, 2]


async def test_a_table_over_the_budget_waits_for_the_owner(autojump_clock):
    """The budget full: the table is not sent at once but waits until the owner applied."""
    sent: list[TablesReceived] = []
    budget = TableBudget(limit=_RECORD * 2)

    def report_nowait(message: Any) -> bool:
        sent.append(message)
        return True

    async def report(message: Any) -> None:
        sent.append(message)

    driver = driver_for(report=report, report_nowait=report_nowait, budget=budget)
    ws = ScriptedWebSocket()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver._converse, ws)
        await ws.feed.send([value_table(2)])
        await ws.feed.send([value_table(1)])
        await trio.sleep(5)
        assert len(sent) == 1  # the second does not fit until the first is applied
        sent[0].applied()
        await trio.sleep(0.001)
        assert len(sent) == 2
        nursery.cancel_scope.cancel()
    assert budget.in_flight == _RECORD


@pytest.mark.parametrize("last_message_at", [0.0, 35.0, 59.0, 119.0])
async def test_silence_is_found_out_silence_seconds_after_the_last_message(
    autojump_clock, monkeypatch, last_message_at
):
    """The silence deadline is not moved by each message, only re-armed when it comes: the
    session still ends exactly ``silence`` seconds after the last message, not earlier, and
    a deadline that has come is armed anew (else the stream would wake without end)."""
    timeouts = Timeouts(keepalive_interval=1000.0, silence=60.0)
    wakes = 0
    on_deadline = SessionDriver._on_deadline

    async def counted(self: SessionDriver, *args: Any) -> None:
        nonlocal wakes
        wakes += 1
        assert wakes <= 5, "the stream's deadline came again and again"
        await on_deadline(self, *args)

    monkeypatch.setattr(SessionDriver, "_on_deadline", counted)

    async def report(_message: Any) -> None:
        pass

    driver = driver_for(report=report, report_nowait=lambda _message: True, timeouts=timeouts)
    ws = ScriptedWebSocket()
    started = trio.current_time()
    ended: list[tuple[float, SessionEnded]] = []

    async def converse() -> None:
        try:
            await driver._converse(ws)
        except SessionEnded as exc:
            ended.append((trio.current_time(), exc))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(converse)
        now = 0.0
        while now < last_message_at:
            step = min(5.0, last_message_at - now)
            await trio.sleep(step)
            now += step
            await ws.feed.send([value_table(1)])
    [(at, exc)] = ended
    assert exc.reason is ReconnectReason.IDLE_TIMEOUT
    assert at - started == pytest.approx(last_message_at + 60.0, abs=1e-6)
