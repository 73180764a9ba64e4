"""The exporter logs in to every firmware era the simulator plays, end to end (issue 17, item 1).

9.1 takes a hash login (getkey, authenticate) and has no tokens; 10.0 takes gettoken and
refreshtoken; today's firmware takes getjwt. Each streams every value; the token store holds a
token only where the era has one, and a reconnect reuses it.
"""

from __future__ import annotations

import logging
from pathlib import Path

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

from loxone_trio_exporter.runtime import TokenStore
from loxone_trio_exporter.simulator import Fault, FaultKind
from loxone_trio_exporter.simulator._firmware import DEFAULT_FIRMWARE

ERAS = [
    pytest.param("9.1.10.30", "authenticate/", False, id="9.1-hash"),
    pytest.param("10.0.9.3", "jdev/sys/gettoken/", True, id="10.0-gettoken"),
    pytest.param(DEFAULT_FIRMWARE, "jdev/sys/getjwt/", True, id="current-getjwt"),
]


def token_files(state_dir: Path) -> list[Path]:
    return sorted(TokenStore(str(state_dir)).directory.glob("*.json"))


@pytest.mark.parametrize(("firmware", "login_command", "has_tokens"), ERAS)
async def test_the_exporter_streams_from_each_era(
    tmp_path: Path, firmware: str, login_command: str, has_tokens: bool
) -> None:
    logins: list[str] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, firmware_version=firmware)
            watch_logins(server, logins)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            response = await http_request(server.port, "/sim/values")
            expected = expected_control_values(
                server.model.document, response.json()["values"], "home"
            )
            await poll_async(lambda: has_series(exporter, len(expected)))
            samples = await exporter.samples()
            assert select(samples, "loxone_control_value") == expected  # rate 0: values stay
            assert value_of(samples, "loxone_up", miniserver="home") == 1
            stored = token_files(tmp_path)

            # A dropped connection logs in again: with the stored token where there is one.
            ok_before = server.accounts.logins_ok
            server.inject(Fault(FaultKind.DROP))
            await poll(lambda: server.accounts.logins_ok > ok_before)
            await exporter.wait_until_streaming("home")
            exporter.shutdown.set()
            nursery.cancel_scope.cancel()

    assert any(command.startswith(login_command) for command in logins), logins
    assert server.accounts.logins_failed == 0
    if has_tokens:
        assert len(stored) == 1  # kept on disk for the next start
        assert sum(c.startswith(login_command) for c in logins) == 1  # one password login
        assert any(c.startswith("authwithtoken/") for c in logins)  # the reconnect
    else:
        assert stored == []  # a hash login leaves nothing to store
        assert sum(c.startswith(login_command) for c in logins) == 2
        assert not any("token" in c for c in logins)


async def test_version_from_jdev_cfg_version_when_api_key_has_none(tmp_path: Path) -> None:
    logins: list[str] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(
                nursery, firmware_version="9.1.10.30", version_in_api_key=False
            )
            watch_logins(server, logins)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            exporter.shutdown.set()
            nursery.cancel_scope.cancel()
    assert any(command.startswith("authenticate/") for command in logins)


async def test_unknown_firmware_ends_only_its_session_with_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            ancient = await start_simulator(nursery, firmware_version="7.4.4.1")
            current = await start_simulator(nursery)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(ancient, "ancient"), miniserver(current, "current")]
            )
            await exporter.wait_until_streaming("current")

            async def refused() -> bool:
                samples = await exporter.samples()
                reconnects = select(
                    samples,
                    "loxone_exporter_reconnects_total",
                    miniserver="ancient",
                    reason="unsupported_firmware",
                )
                return sum(reconnects.values()) >= 1

            await poll_async(refused)
            samples = await exporter.samples()
            exporter.shutdown.set()
            nursery.cancel_scope.cancel()
    assert value_of(samples, "loxone_up", miniserver="ancient") == 0
    assert value_of(samples, "loxone_up", miniserver="current") == 1
    assert ancient.accounts.logins_ok + ancient.accounts.logins_failed == 0  # never tried
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("7.4.4.1" in message and "older than 8.0" in message for message in errors)


async def has_series(exporter: object, count: int) -> bool:
    samples = await exporter.samples()  # type: ignore[attr-defined]
    return len(select(samples, "loxone_control_value")) >= count


def watch_logins(server: object, seen: list[str]) -> None:
    """Record the login commands every new session of ``server`` receives, decrypted."""
    new_session = server.new_session  # type: ignore[attr-defined]

    def watched(*, secure: bool) -> object:
        session = new_session(secure=secure)
        dispatch = session._dispatch

        def recording(command: str, route: object, now: float) -> object:
            if command.startswith(("authenticate/", "authwithtoken/", "jdev/sys/get")):
                seen.append(command)
            return dispatch(command, route, now)

        session._dispatch = recording
        return session

    server.new_session = watched  # type: ignore[attr-defined]
