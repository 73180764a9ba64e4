"""The state owner's task: messages from a channel, stale values dropped on virtual time."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from owner_feed import (
    family,
    family_series,
    make_owner,
    series_of,
    structure_ready,
    tables,
)

from loxone_trio_exporter.config import ExportConfig
from loxone_trio_exporter.protocol import ValueStatesReceived
from loxone_trio_exporter.runtime import BuildInfo, StateOwner
from loxone_trio_exporter.runtime._messages import (
    ConnectionState,
    Message,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    TablesReceived,
)
from loxone_trio_exporter.runtime._owner import (
    LARGE_TABLE_BYTES,
    TRIM_AFTER_LARGE_TABLES_SECONDS,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver

# ------------------------------------------------------------------------------------ staleness


async def send_and_settle(send_channel, *messages: Message) -> None:
    for message in messages:
        await send_channel.send(message)
    await trio.testing.wait_all_tasks_blocked()


def next_timer() -> float:
    return trio.lowlevel.current_statistics().seconds_to_next_deadline


async def streaming_owner(nursery, model):
    owner = make_owner(stale_after_seconds=60)
    send_channel, receive_channel = trio.open_memory_channel[Message](100)
    await nursery.start(owner.run, receive_channel)
    await send_and_settle(
        send_channel,
        structure_ready("home", model),
        *tables("home", model.full_tables()),
        StatusChanged("home", ConnectionState.STREAMING),
    )
    assert series_of(owner, "loxone_control_value")
    return owner, send_channel


async def test_values_go_stale_after_the_session_is_lost(nursery, autojump_clock):
    model = SimulatedMiniserver.generate(10, seed=10)
    owner, send_channel = await streaming_owner(nursery, model)
    assert next_timer() == float("inf")  # idle: no timer at all
    start = trio.current_time()
    await send_and_settle(send_channel, SessionLost("home", ReconnectReason.CLOSED, "closed"))
    assert next_timer() == pytest.approx(60.0)
    await trio.sleep(30)
    # Failed tries do not restart the timer: the values are as old as the first loss.
    await send_and_settle(
        send_channel, SessionLost("home", ReconnectReason.UNREACHABLE, "no route to host")
    )
    await trio.sleep_until(start + 59.999)
    assert series_of(owner, "loxone_control_value")
    await trio.sleep_until(start + 60)
    await trio.testing.wait_all_tasks_blocked()
    snapshot = owner.snapshot()
    for name in (
        "loxone_control_value",
        "loxone_global_value",
        "loxone_daytimer_entries",
        "loxone_weather_temperature_celsius",
    ):
        assert family_series(family(snapshot, name)) == {}, name
    # What describes the Miniserver stays: its controls, its counters, loxone_up 0.
    assert family_series(family(snapshot, "loxone_control_info"))
    assert family_series(family(snapshot, "loxone_up")) == {(("miniserver", "home"),): 0.0}
    assert next_timer() == float("inf")


async def test_values_stay_when_streaming_resumes_in_time(nursery, autojump_clock):
    model = SimulatedMiniserver.generate(10, seed=10)
    owner, send_channel = await streaming_owner(nursery, model)
    before = series_of(owner, "loxone_control_value")
    await send_and_settle(send_channel, SessionLost("home", ReconnectReason.CLOSED, "closed"))
    await trio.sleep(59)
    await send_and_settle(send_channel, StatusChanged("home", ConnectionState.STREAMING))
    assert next_timer() == float("inf")
    await trio.sleep(600)
    assert series_of(owner, "loxone_control_value") == before


async def test_tables_of_a_new_session_stop_the_stale_timer(nursery, autojump_clock):
    model = SimulatedMiniserver.generate(10, seed=10)
    _, send_channel = await streaming_owner(nursery, model)
    await send_and_settle(send_channel, SessionLost("home", ReconnectReason.CLOSED, "closed"))
    await trio.sleep(30)
    # Tables may come before the STREAMING status of the new session.
    await send_and_settle(send_channel, *tables("home", model.full_tables()))
    assert next_timer() == float("inf")


async def test_run_ends_when_every_sender_is_closed(autojump_clock):
    owner = make_owner()
    send_channel, receive_channel = trio.open_memory_channel[Message](10)
    async with trio.open_nursery() as nursery:
        await nursery.start(owner.run, receive_channel)
        async with send_channel:
            await send_channel.send(MiniserverIdentified("home", "504F94A00001", "15.3.1"))
    assert owner.views()[0].firmware == "15.3.1"


async def test_large_tables_give_their_memory_back_once_they_stop(autojump_clock):
    trims: list[float] = []
    owner = StateOwner(
        ["home"],
        ExportConfig(),
        build_info=BuildInfo("1"),
        release_memory=lambda: trims.append(trio.current_time()),
    )
    send_channel, receive_channel = trio.open_memory_channel[Message](10)
    large = TablesReceived("home", ValueStatesReceived(()), size=LARGE_TABLE_BYTES)
    small = TablesReceived("home", ValueStatesReceived(()), size=LARGE_TABLE_BYTES - 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(owner.run, receive_channel)
        await send_channel.send(small)
        await trio.sleep(1)
        assert trims == []  # small tables leave nothing worth a trim
        for _ in range(3):  # a flood: one trim once it has stopped, not one per table
            await send_channel.send(large)
            last = trio.current_time()
            await trio.sleep(TRIM_AFTER_LARGE_TABLES_SECONDS / 2)
        await trio.sleep(1)
        assert trims == [last + TRIM_AFTER_LARGE_TABLES_SECONDS]
        nursery.cancel_scope.cancel()
