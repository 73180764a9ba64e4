"""The failure boundary per Miniserver: a defect at any step of one session, or in the state
owner's handling of one Miniserver's message, ends that session only.

An exception nobody expects (``RuntimeError``) is injected once, at one step, for the Miniserver
``faulty``; ``other`` streams from a second simulator beside it. The whole exporter runs on real
loopback sockets. Afterwards the process still serves, ``faulty`` streams again with every value,
the error is counted as ``reconnects_total{reason="internal_error"}`` and logged once with its
traceback, and ``other`` never noticed (one login, no reconnect, its events still counting).
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from exporter_harness import miniserver, poll_async, select, start_exporter, start_simulator
from test_faults_e2e import FAST, Case, _after_recovery

from loxone_trio_exporter.protocol import ValueStatesReceived
from loxone_trio_exporter.protocol._session import (
    Authenticated,
    StructureLoaded,
    TokenAcquired,
    UpdatesEnabled,
)
from loxone_trio_exporter.runtime._connection import MiniserverConnection
from loxone_trio_exporter.runtime._messages import (
    MiniserverIdentified,
    StatusChanged,
    StructureReady,
    TablesReceived,
    TokenUpdated,
)
from loxone_trio_exporter.runtime._owner import StateOwner
from loxone_trio_exporter.runtime._session import SessionDriver, TokenKeeper

INJECTED = "injected by the test"


class Injector:
    """Raises ``RuntimeError`` once, the first time a patched step runs for ``faulty``."""

    def __init__(self) -> None:
        self.fired = 0

    def maybe_raise(self) -> None:
        if self.fired == 0:
            self.fired += 1
            raise RuntimeError(INJECTED)


def _miniserver_of(instance: Any, args: tuple[Any, ...]) -> str | None:
    if isinstance(instance, StateOwner):
        return str(args[1].miniserver)  # _apply_to(state, message, now)
    if isinstance(instance, TokenKeeper):
        return str(instance._miniserver)
    return str(instance.name)


def _patch(
    monkeypatch: pytest.MonkeyPatch,
    injector: Injector,
    owner_class: type,
    attribute: str,
    when: Callable[[tuple[Any, ...]], bool] = lambda args: True,
) -> None:
    original = getattr(owner_class, attribute)

    def should_raise(instance: Any, args: tuple[Any, ...]) -> bool:
        return _miniserver_of(instance, args) == "faulty" and when(args)

    if inspect.iscoroutinefunction(original):

        @functools.wraps(original)
        async def async_step(instance: Any, *args: Any, **kwargs: Any) -> Any:
            if should_raise(instance, args):
                injector.maybe_raise()
            return await original(instance, *args, **kwargs)

        monkeypatch.setattr(owner_class, attribute, async_step)
    else:

        @functools.wraps(original)
        def step(instance: Any, *args: Any, **kwargs: Any) -> Any:
            if should_raise(instance, args):
                injector.maybe_raise()
            return original(instance, *args, **kwargs)

        monkeypatch.setattr(owner_class, attribute, step)


def _event(kind: type) -> Callable[[tuple[Any, ...]], bool]:
    return lambda args: isinstance(args[0], kind)


def _message(kind: type, table: type | None = None) -> Callable[[tuple[Any, ...]], bool]:
    def matches(args: tuple[Any, ...]) -> bool:
        message = args[1]
        if not isinstance(message, kind):
            return False
        return table is None or isinstance(message.table, table)

    return matches


#: step name -> (class, method, which calls). Together they cover a session from the HTTP probe
#: to streaming, the token's way to the keeper, and each message kind the owner applies.
STEPS: dict[str, tuple[type, str, Callable[[tuple[Any, ...]], bool]]] = {
    "probe": (MiniserverConnection, "_probe", lambda args: True),
    "http_value": (MiniserverConnection, "_http_value", lambda args: True),
    "new_session": (MiniserverConnection, "_new_session", lambda args: True),
    "connect": (MiniserverConnection, "_connect", lambda args: True),
    "upgraded": (SessionDriver, "_converse", lambda args: True),
    "first_message": (SessionDriver, "_receive_at_once", lambda args: True),
    "authenticated": (SessionDriver, "_on_event", _event(Authenticated)),
    "token_acquired": (SessionDriver, "_on_event", _event(TokenAcquired)),
    "token_keeper": (TokenKeeper, "acquired", lambda args: True),
    "structure_loaded": (SessionDriver, "_load_structure", lambda args: True),
    "updates_enabled": (SessionDriver, "_on_event", _event(UpdatesEnabled)),
    "structure_event": (SessionDriver, "_on_event", _event(StructureLoaded)),
    "owner_identified": (StateOwner, "_apply_to", _message(MiniserverIdentified)),
    "owner_status": (StateOwner, "_apply_to", _message(StatusChanged)),
    "owner_structure": (StateOwner, "_apply_to", _message(StructureReady)),
    "owner_token": (StateOwner, "_apply_to", _message(TokenUpdated)),
    "owner_values": (StateOwner, "_apply_to", _message(TablesReceived, ValueStatesReceived)),
}


@pytest.mark.parametrize("step", list(STEPS))
async def test_a_defect_at_any_step_ends_one_session_only(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    step: str,
) -> None:
    owner_class, attribute, when = STEPS[step]
    injector = Injector()
    caplog.set_level(logging.INFO)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            faulty = await start_simulator(nursery, seed=1)
            other = await start_simulator(nursery, seed=2, rate=50.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(other, "other")], timeouts=FAST
            )
            await exporter.wait_until_streaming("other")
            _patch(monkeypatch, injector, owner_class, attribute, when)
            # ``faulty`` joins by a reload-like start, so ``other`` is streaming before the
            # defect and must keep streaming through it.
            registry_start(exporter, miniserver(faulty, "faulty"))
            await poll_async(lambda: _counted_internal_error(exporter), within=10)
            events_before = _other_events(await exporter.samples())
            samples = await _after_recovery(exporter, faulty, _case())
            await poll_async(
                lambda: _other_events_grew(exporter, events_before), within=10
            )  # ``other`` still streams after the defect
            assert other.accounts.logins_ok == 1
            assert exporter.streaming("other")
            nursery.cancel_scope.cancel()
    assert injector.fired == 1, f"step {step} never ran"
    assert set(
        select(samples, "loxone_exporter_reconnects_total", miniserver="other").values()
    ) == {0.0}
    internal = select(
        samples, "loxone_exporter_reconnects_total", miniserver="faulty", reason="internal_error"
    )
    assert list(internal.values()) == [1.0]
    tracebacks = [r for r in caplog.records if r.exc_info and INJECTED in str(r.exc_info[1])]
    assert len(tracebacks) == 1
    assert "faulty" in tracebacks[0].getMessage()


def registry_start(exporter: Any, config: Any) -> None:
    handle = exporter.handle
    registry = handle.owner.restart_session.__self__  # the registry wired itself to the owner
    handle.owner.add_miniserver(config.name)
    registry.start(registry.prepare(config))


def _case() -> Case:
    return Case((), "internal_error")


async def _counted_internal_error(exporter: Any) -> bool:
    samples = await exporter.samples()
    found = select(
        samples, "loxone_exporter_reconnects_total", miniserver="faulty", reason="internal_error"
    )
    return bool(found) and next(iter(found.values())) >= 1


def _other_events(samples: dict[Any, float]) -> float:
    return sum(select(samples, "loxone_exporter_events_total", miniserver="other").values())


async def _other_events_grew(exporter: Any, before: float) -> bool:
    return _other_events(await exporter.samples()) > before
