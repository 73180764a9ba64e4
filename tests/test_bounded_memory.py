"""What a Miniserver sends cannot grow the exporter's memory past what its structure names.

States outside the structure are counted and dropped, texts are kept only as long as they are
exported, daytimers only as their number of entries; tables stay packed (their own bytes, no
object per record) until the owner applies them, and a connection waits while too many bytes of
its tables are still unapplied.
"""

from __future__ import annotations

import logging
import os
import struct

import pytest
import trio
import trio.testing
from exporter_harness import (
    miniserver,
    poll_async,
    select,
    start_exporter,
    start_simulator,
    value_of,
)
from owner_feed import feed, make_owner, series_of, structure_ready, tables

from loxone_trio_exporter.protocol import (
    DaytimerEntry,
    DaytimerState,
    MessageIdentifier,
    TextState,
    decode_daytimer_states,
    decode_text_states,
    decode_value_states,
    decode_weather_states,
    encode_daytimer_states,
    encode_text_states,
)
from loxone_trio_exporter.protocol._packed import (
    PackedValueStates,
    packed_daytimer_states,
    packed_text_states,
    packed_value_states,
    packed_weather_states,
)
from loxone_trio_exporter.runtime._backpressure import TableBudget
from loxone_trio_exporter.simulator import Fault, FaultKind, SimulatedMiniserver
from loxone_trio_exporter.state import MAX_TEXT_LENGTH

VALUE = struct.Struct("<16sd")


def _model() -> SimulatedMiniserver:
    return SimulatedMiniserver.generate(40, seed=3)


def _unknown_values(count: int) -> bytes:
    return b"".join(VALUE.pack(os.urandom(16), float(i)) for i in range(count))


def _streaming_owner(model: SimulatedMiniserver):  # type: ignore[no-untyped-def]
    owner = make_owner()
    feed(owner, [structure_ready("home", model)])
    feed(owner, tables("home", model.full_tables()))
    return owner


def _unknown_states_total(owner) -> float:  # type: ignore[no-untyped-def]
    (value,) = series_of(owner, "loxone_exporter_unknown_states_total").values()
    return float(value)


def _kept_values(state) -> dict[bytes, float]:  # type: ignore[no-untyped-def]
    """The last value of each state the Miniserver's store keeps (for a filter reload)."""
    return dict(state.store.records())


def test_value_states_outside_the_structure_are_counted_not_kept(caplog):
    model = _model()
    owner = _streaming_owner(model)
    state = owner._miniservers["home"]
    kept = len(_kept_values(state))
    assert kept > 0
    with caplog.at_level(logging.WARNING):
        for _ in range(5):
            feed(owner, tables("home", [(MessageIdentifier.VALUE_STATES, _unknown_values(1000))]))
    assert len(_kept_values(state)) == kept
    assert _unknown_states_total(owner) == 5000
    warnings = [r for r in caplog.records if "not in its structure" in r.getMessage()]
    assert len(warnings) == 1  # once per structure load, not per table
    feed(owner, [structure_ready("home", model)])  # a new session
    with caplog.at_level(logging.WARNING):
        feed(owner, tables("home", [(MessageIdentifier.VALUE_STATES, _unknown_values(1))]))
    assert len([r for r in caplog.records if "not in its structure" in r.getMessage()]) == 2


def test_a_table_mixing_known_and_unknown_states_keeps_the_known_ones():
    model = _model()
    owner = _streaming_owner(model)
    state = owner._miniservers["home"]
    known = next(iter(_kept_values(state)))
    mixed = _unknown_values(3) + VALUE.pack(known, 42.5) + _unknown_values(2)
    feed(owner, tables("home", [(MessageIdentifier.VALUE_STATES, mixed)]))
    assert _kept_values(state)[known] == 42.5
    named = state.layout.known_uuids()
    assert known in named
    assert all(uuid in named for uuid in _kept_values(state))
    assert _unknown_states_total(owner) == 5


def test_texts_are_kept_cut_to_the_exported_length_and_only_for_known_states():
    model = _model()
    owner = _streaming_owner(model)
    state = owner._miniservers["home"]
    known = next(iter(state.store.raw_texts))
    long_text = "x" * 100_000
    table = encode_text_states([TextState(known, long_text), TextState(os.urandom(16), long_text)])
    feed(owner, tables("home", [(MessageIdentifier.TEXT_STATES, table)]))
    assert state.store.raw_texts[known] == long_text[:MAX_TEXT_LENGTH]
    assert {*state.store.raw_texts} <= state.layout.known_uuids()
    assert _unknown_states_total(owner) == 1


def test_daytimers_are_kept_as_their_number_of_entries():
    model = _model()
    owner = _streaming_owner(model)
    state = owner._miniservers["home"]
    if not state.store.raw_daytimers:
        pytest.skip("this generated structure has no daytimer")  # pragma: no cover
    uuid = next(iter(state.store.raw_daytimers))
    entries = tuple(DaytimerEntry(0, 60 * h, 60 * h + 30, 0, 1.0) for h in range(7))
    table = encode_daytimer_states([DaytimerState(uuid, 0.0, entries)])
    feed(owner, tables("home", [(MessageIdentifier.DAYTIMER_STATES, table)]))
    assert state.store.raw_daytimers[uuid] == 7


def test_packed_tables_read_what_the_decoders_read():
    model = _model()
    for identifier, payload in model.full_tables():
        packed, decoded = {
            MessageIdentifier.VALUE_STATES: (packed_value_states, decode_value_states),
            MessageIdentifier.TEXT_STATES: (packed_text_states, decode_text_states),
            MessageIdentifier.DAYTIMER_STATES: (packed_daytimer_states, decode_daytimer_states),
            MessageIdentifier.WEATHER_STATES: (packed_weather_states, decode_weather_states),
        }[identifier]
        table = packed(payload)
        assert table == decoded(payload)
        assert len(table) == len(decoded(payload))
        assert table.payload_size == len(payload)


def test_a_packed_value_table_holds_its_payload_and_nothing_per_record():
    payload = _unknown_values(10_000)
    table = packed_value_states(payload)
    assert isinstance(table, PackedValueStates)
    assert table._payload is payload  # no copy, no tuple per record
    assert len(table) == 10_000


async def test_a_connection_waits_while_its_unapplied_tables_exceed_the_budget():
    budget = TableBudget(limit=100)
    await budget.acquire(60)
    await budget.acquire(40)  # exactly the limit: no wait
    entered = trio.Event()

    async def third() -> None:
        await budget.acquire(10)
        entered.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(third)
        await trio.testing.wait_all_tasks_blocked()
        assert not entered.is_set()  # 110 > 100: waits for the owner
        budget.release(60)
        await entered.wait()
    assert budget.in_flight == 50
    budget.release(50)
    await budget.acquire(500)  # larger than the limit, alone: goes at once
    assert budget.in_flight == 500


def test_try_acquire_counts_only_what_fits_now():
    budget = TableBudget(limit=100)
    assert budget.try_acquire(60)
    assert budget.try_acquire(40)  # exactly the limit
    assert not budget.try_acquire(1)  # acquire would wait: nothing counted
    assert budget.in_flight == 100
    budget.release(100)
    assert budget.try_acquire(500)  # larger than the limit, alone: goes at once
    assert budget.in_flight == 500


# --- end to end: the simulator's ``flood`` fault against the whole exporter -----------------------


@pytest.mark.parametrize("table", ["value", "text"])
async def test_a_flood_of_unknown_states_is_counted_and_leaves_the_other_alone(tmp_path, table):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            # Ordinary events flow beside the flood: its tables must reach the wire whole,
            # never with a broadcast between a header and its payload.
            faulty = await start_simulator(nursery, seed=1, rate=50.0)
            other = await start_simulator(nursery, seed=2, rate=50.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(faulty, "faulty"), miniserver(other, "other")]
            )
            await exporter.wait_until_streaming("faulty", "other")
            state = exporter.handle.owner._miniservers["faulty"]
            known = state.layout.known_uuids()
            faulty.inject(Fault(FaultKind.FLOOD, table=table, size=256 * 1024, seconds=1.0))

            # Many tables' worth (a 256 KiB table holds 10,922 value or 253 text states).
            enough = 50_000 if table == "value" else 1_000

            async def many_counted() -> bool:
                total = await exporter.samples()
                return (
                    value_of(total, "loxone_exporter_unknown_states_total", miniserver="faulty")
                    > enough
                )

            await poll_async(many_counted, within=10)
            total = await exporter.samples()
            reconnects = select(total, "loxone_exporter_reconnects_total", miniserver="faulty")
            assert sum(reconnects.values()) == 0, reconnects  # one session took the whole flood
            # Only states of the structure are kept (the first values may still be arriving
            # when the flood starts, so their number is not fixed; where they come from is).
            assert set(_kept_values(state)) <= known
            assert set(state.store.raw_texts) <= known
            assert exporter.streaming("faulty")
            assert exporter.streaming("other")
            assert other.accounts.logins_ok == 1
            nursery.cancel_scope.cancel()


async def test_a_table_over_the_limit_ends_only_that_session(tmp_path):
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            faulty = await start_simulator(nursery, seed=1)
            other = await start_simulator(nursery, seed=2, rate=50.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(faulty, "faulty"), miniserver(other, "other")]
            )
            await exporter.wait_until_streaming("faulty", "other")
            faulty.inject(Fault(FaultKind.FLOOD, size=17 * 1024 * 1024, seconds=0.5))

            async def refused() -> bool:
                total = await exporter.samples()
                return (
                    value_of(total, "loxone_exporter_protocol_errors_total", miniserver="faulty")
                    >= 1
                )

            await poll_async(refused, within=15)
            await exporter.wait_until_streaming("faulty")
            assert exporter.streaming("other")
            assert other.accounts.logins_ok == 1
            nursery.cancel_scope.cancel()
