"""Every simulator fault against the whole exporter, with a second Miniserver beside it.

For each fault kind: the exporter recovers (or waits as the Miniserver demands), ``loxone_up`` is
right, the series are right afterwards, the other Miniserver never notices, and the number of
logins stays within the rules. Real sockets; timers shortened (keepalive, backoff, the booting
probe) so each case takes about a second instead of minutes; the full-length waits are checked
on virtual time in tests/test_connection_hardening.py.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from exporter_harness import (
    miniserver,
    poll,
    poll_async,
    select,
    start_exporter,
    start_simulator,
    value_of,
)
from http_client import http_request
from structure_oracle import expected_control_values
from test_exporter_e2e import assert_every_numeric_state_once_per_owner

from loxone_trio_exporter.runtime._connection import Timeouts
from loxone_trio_exporter.simulator import Fault, FaultKind

FAST = Timeouts(
    keepalive_interval=0.3,
    keepalive_answer=1.0,  # generous: a loaded machine must not make "other" miss one
    silence=3.0,
    booting_retry=0.2,
    reconnect_base=0.05,
    reconnect_cap=0.2,
    auth_retry_base=0.05,  # the 30 s of real life would outlast the test
)


@attrs.frozen
class Case:
    faults: tuple[Fault, ...]
    reason: str  # the reconnect reason counted first
    new_tokens: int = 0  # tokens issued beyond the first (a new getjwt)
    failed_logins: int = 0
    waits: float | None = None  # a long wait the Miniserver demands: no recovery expected


CASES = {
    "drop": Case((Fault(FaultKind.DROP),), "connection_lost"),
    "out_of_service": Case((Fault(FaultKind.OUT_OF_SERVICE),), "out_of_service"),
    "close_1000": Case((Fault(FaultKind.CLOSE, code=1000),), "closed"),
    "close_4003": Case((Fault(FaultKind.CLOSE, code=4003, seconds=1),), "blocked"),
    "close_4004": Case((Fault(FaultKind.CLOSE, code=4004),), "user_changed", new_tokens=1),
    "close_4005": Case((Fault(FaultKind.CLOSE, code=4005),), "user_changed", new_tokens=1),
    "close_4006": Case((Fault(FaultKind.CLOSE, code=4006),), "user_disabled", waits=600.0),
    "close_4007": Case(
        (Fault(FaultKind.BOOT, seconds=0.6), Fault(FaultKind.CLOSE, code=4007)), "connection_lost"
    ),
    "close_4008": Case((Fault(FaultKind.CLOSE, code=4008),), "no_event_slots", waits=300.0),
    "garbage": Case((Fault(FaultKind.GARBAGE),), "protocol_error"),
    "stall": Case((Fault(FaultKind.STALL, seconds=2.0),), "keepalive_timeout"),
    "auth_fail": Case(
        (Fault(FaultKind.AUTH_FAIL, count=2), Fault(FaultKind.TOKEN_EXPIRE), Fault(FaultKind.DROP)),
        "connection_lost",
        new_tokens=1,
        failed_logins=2,
    ),
    "token_expire": Case(
        (Fault(FaultKind.TOKEN_EXPIRE), Fault(FaultKind.DROP)),
        "connection_lost",
        new_tokens=1,
        failed_logins=1,  # the refused token
    ),
    "structure_change": Case((Fault(FaultKind.STRUCTURE_CHANGE),), "out_of_service"),
    "boot": Case((Fault(FaultKind.BOOT, seconds=0.6),), "connection_lost"),
    "tables_before_ack": Case(
        (Fault(FaultKind.TABLES_BEFORE_ACK), Fault(FaultKind.DROP)), "connection_lost"
    ),
    "estimated_headers": Case(
        (Fault(FaultKind.ESTIMATED_HEADERS), Fault(FaultKind.DROP)), "connection_lost"
    ),
    "clear": Case((Fault(FaultKind.STALL, seconds=1000), Fault(FaultKind.CLEAR)), "", new_tokens=0),
}


async def sim_values(port: int) -> dict[str, float]:
    values: dict[str, float] = (await http_request(port, "/sim/values")).json()["values"]
    return values


@pytest.mark.parametrize("name", list(CASES))
async def test_fault_recovery_leaves_the_other_miniserver_alone(tmp_path: Path, name: str) -> None:
    case = CASES[name]
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            faulty = await start_simulator(nursery, seed=1)
            other = await start_simulator(nursery, seed=2, rate=50.0)
            exporter = await start_exporter(
                nursery,
                tmp_path,
                [miniserver(faulty, "faulty"), miniserver(other, "other")],
                timeouts=FAST,
            )
            await exporter.wait_until_streaming("faulty", "other")
            injected_at = time.time()  # the owner's wall clock
            for fault in case.faults:
                faulty.inject(fault)
            if case.waits is not None:
                samples = await _while_waiting(exporter, case, injected_at)
            else:
                samples = await _after_recovery(exporter, faulty, case)
            assert other.accounts.logins_ok == 1  # never disturbed
            assert exporter.streaming("other")
            nursery.cancel_scope.cancel()
    assert value_of(samples, "loxone_up", miniserver="other") == 1
    assert set(
        select(samples, "loxone_exporter_reconnects_total", miniserver="other").values()
    ) == {0.0}
    assert len(list(faulty.accounts.tokens)) == 1 + case.new_tokens
    assert faulty.accounts.logins_failed == case.failed_logins


async def _after_recovery(exporter: Any, faulty: Any, case: Case) -> dict[Any, float]:
    if case.reason:

        async def counted() -> bool:
            samples = await exporter.samples()
            return bool(
                select(
                    samples,
                    "loxone_exporter_reconnects_total",
                    miniserver="faulty",
                    reason=case.reason,
                )
            )

        await poll_async(counted, within=10)
    await exporter.wait_until_streaming("faulty")
    values = await sim_values(faulty.port)
    expected = len(expected_control_values(faulty.model.document, values, "faulty"))

    async def complete() -> bool:
        samples = await exporter.samples()
        return len(select(samples, "loxone_control_value", miniserver="faulty")) == expected

    await poll_async(complete, within=10)
    samples: dict[Any, float] = await exporter.samples()
    assert value_of(samples, "loxone_up", miniserver="faulty") == 1
    assert_every_numeric_state_once_per_owner(samples, faulty.model.document, values, "faulty")
    logins = faulty.accounts.logins_ok + faulty.accounts.logins_failed
    reconnects = sum(select(samples, "loxone_exporter_reconnects_total").values())
    # Per attempt at most a stored-token login and, when that is refused, one password login.
    assert logins <= 1 + 2 * reconnects
    assert faulty.accounts.logins_failed <= reconnects
    return samples


def _next_try(exporter: Any) -> int | None:
    """The seconds until the faulty Miniserver's next try, as its view counts them down; None
    unless it is waiting with a next try set."""
    views = {view.name: view for view in exporter.handle.owner.views()}
    found = re.search(r"; next try in ([0-9]+) s$", views["faulty"].state)
    return None if found is None or views["faulty"].streaming else int(found[1])


async def _while_waiting(exporter: Any, case: Case, injected_at: float) -> dict[Any, float]:
    assert case.waits is not None
    await poll(lambda: _next_try(exporter) is not None, within=5)
    first = _next_try(exporter)
    read_at = time.time()
    # The wait began between the injection and this reading, and the view rounds up.
    assert first is not None
    assert math.ceil(case.waits - (read_at - injected_at)) <= first <= case.waits
    # Watch the countdown go down by two: more than a second, five times FAST's longest backoff
    # step. Had the connection taken that step instead of the wait, it would be connecting or
    # streaming again, or counting a second reconnect, by then.
    assert 5 * FAST.reconnect_cap <= 1.0
    with trio.fail_after(5):
        while True:
            left = _next_try(exporter)
            assert left is not None, "the connection tried again before the wait was over"
            if left <= first - 2:
                break
            await trio.sleep(0.02)
    samples: dict[Any, float] = await exporter.samples()
    assert _next_try(exporter) is not None
    assert value_of(samples, "loxone_up", miniserver="faulty") == 0
    reconnects = select(samples, "loxone_exporter_reconnects_total", miniserver="faulty")
    assert {dict(labels)["reason"]: n for (_, labels), n in reconnects.items() if n} == {
        case.reason: 1.0
    }
    return samples
