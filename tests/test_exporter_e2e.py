"""The exporter end to end: simulator -> connection tasks -> state owner -> /metrics.

Every test runs the real exporter (``run_exporter``) and the real simulator on loopback in one
trio run, and reads the exporter's answers over HTTP as Prometheus would.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from conftest import strict_mode
from exporter_harness import (
    miniserver,
    poll,
    poll_async,
    same_value,
    select,
    start_exporter,
    start_simulator,
    state_refs,
    value_of,
    walk_controls,
)
from http_client import http_request
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from structure_oracle import expected_control_values

from loxone_trio_exporter.protocol import HashAlgorithm
from loxone_trio_exporter.simulator import (
    Fault,
    FaultKind,
    SimulatorOptions,
    User,
    serve_simulator,
)

STRUCTURE_FILES = ["loxone-java-showroom.LoxAPP3.json", "smarteon-2025.LoxAPP3.json"]


async def sim_values(port: int) -> dict[str, Any]:
    response = await http_request(port, "/sim/values")
    assert response.status == 200
    values: dict[str, Any] = response.json()
    return values


def assert_every_numeric_state_once_per_owner(
    samples: dict[Any, float], document: dict[str, Any], values: dict[str, float], name: str
) -> int:
    """Compare ``loxone_control_value`` with a walk over the structure document: every label
    set (``structure_oracle``) and every value."""
    series = select(samples, "loxone_control_value", miniserver=name)
    by_owner = {(dict(labels)["uuid"], dict(labels)["state"]) for _, labels in series}
    assert len(by_owner) == len(series)  # (uuid, state) alone identifies a series
    expected = expected_control_values(document, values, name)
    assert set(series) == set(expected)
    for key, value in expected.items():
        assert same_value(series[key], value), (sorted(key[1]), series[key], value)
    return len(expected)


async def test_every_numeric_state_appears_once_per_owner_with_the_simulators_value(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            values = (await sim_values(server.port))["values"]
            await poll_async(lambda: _has_all(exporter, len(values)))
            samples = await exporter.samples()
            count = assert_every_numeric_state_once_per_owner(
                samples, server.model.document, values, "home"
            )
            exporter.shutdown.set()
            nursery.cancel_scope.cancel()
    # The generated structure shares state UUIDs between controls: more owners than UUIDs.
    assert count > len(values) - len(_global_uuids(server.model.document))
    assert value_of(samples, "loxone_up", miniserver="home") == 1


async def _has_all(exporter: Any, at_least: int) -> bool:
    samples = await exporter.samples()
    return len(select(samples, "loxone_control_value")) >= at_least // 2


def _global_uuids(document: dict[str, Any]) -> set[str]:
    return set((document.get("globalStates") or {}).values())


@pytest.mark.parametrize("fixture_name", STRUCTURE_FILES)
async def test_real_structure_files_served_by_the_simulator(
    tmp_path: Path, shared_fixture: Any, fixture_name: str
) -> None:
    document = json.loads(shared_fixture(fixture_name).read_text(encoding="utf-8"))
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, structure=document)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            values = (await sim_values(server.port))["values"]
            expected = len(expected_control_values(document, values, "home"))
            await poll_async(
                lambda: _count_is(exporter, "loxone_control_value", expected), within=10
            )
            samples = await exporter.samples()
            assert_every_numeric_state_once_per_owner(samples, document, values, "home")
            info = select(samples, "loxone_control_info", miniserver="home")
            assert len(info) == sum(1 for _ in walk_controls(document))
            nursery.cancel_scope.cancel()


async def _count_is(exporter: Any, name: str, count: int) -> bool:
    return len(select(await exporter.samples(), name)) == count


async def test_changes_daytimers_weather_and_globals_appear(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            values = (await sim_values(server.port))["values"]
            # One state of a top-level control, changed at the simulator.
            control, _ = next(
                (c, p)
                for c, p in walk_controls(server.model.document)
                if p is None and any(u in values for _, u in state_refs(c.get("states") or {}))
            )
            label, uuid = next(
                (label, u) for label, u in state_refs(control["states"]) if u in values
            )
            server.broadcast([server.model.set_value(uuid, 4242.5)], value_events=1)

            async def changed() -> bool:
                samples = await exporter.samples()
                found = select(
                    samples, "loxone_control_value", uuid=control["uuidAction"], state=label
                )
                return list(found.values()) == [4242.5]

            await poll_async(changed, within=5)
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    assert select(samples, "loxone_daytimer_entries", miniserver="home")
    assert select(samples, "loxone_global_value", miniserver="home")
    weather = [key for key in samples if key[0].startswith("loxone_weather_")]
    assert weather, "no loxone_weather_* series"
    assert value_of(samples, "loxone_exporter_events_total", miniserver="home", table="value") > 0


async def test_two_miniservers_one_with_a_wrong_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            good = await start_simulator(nursery, seed=1)
            bad = await start_simulator(nursery, seed=2)
            exporter = await start_exporter(
                nursery,
                tmp_path,
                [miniserver(good, "good"), miniserver(bad, "bad", password="not-the-password")],
            )
            await exporter.wait_until_streaming("good")

            async def failed(times: int) -> bool:
                samples = await exporter.samples()
                failures = value_of(
                    samples, "loxone_exporter_auth_failures_total", miniserver="bad"
                )
                return failures >= times

            await poll_async(partial(failed, 1), within=15)
            # The next try is 30-60 s away; an operator who fixed things ends the wait.
            unknown = await http_request(
                exporter.port, "/-/reconnect?miniserver=nobody", method="POST"
            )
            assert unknown.status == 404
            asked = await http_request(exporter.port, "/-/reconnect?miniserver=bad", method="POST")
            assert (asked.status, asked.body) == (200, b"trying again now: bad\n")
            await poll_async(partial(failed, 2), within=15)
            samples = await exporter.samples()
            assert exporter.streaming("good")
            nursery.cancel_scope.cancel()
    assert value_of(samples, "loxone_up", miniserver="good") == 1
    assert value_of(samples, "loxone_up", miniserver="bad") == 0
    assert select(samples, "loxone_control_value", miniserver="good")
    assert not select(samples, "loxone_control_value", miniserver="bad")
    assert value_of(samples, "loxone_exporter_auth_failures_total", miniserver="good") == 0
    reconnects = value_of(
        samples, "loxone_exporter_reconnects_total", miniserver="bad", reason="auth_failed"
    )
    assert reconnects >= 2
    lines = [r.getMessage() for r in caplog.records if "miniserver bad" in r.getMessage()]
    assert any("authentication failed" in line and "next try in" in line for line in lines)
    assert "not-the-password" not in caplog.text


async def test_sha1_and_sha256_users(tmp_path: Path) -> None:
    users = (
        User("old", "pass-one", HashAlgorithm.SHA1),
        User("new", "pass-two", HashAlgorithm.SHA256),
    )
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, users=users)
            exporter = await start_exporter(
                nursery,
                tmp_path,
                [
                    miniserver(server, "sha1", user="old", password="pass-one"),
                    miniserver(server, "sha256", user="new", password="pass-two"),
                ],
            )
            await exporter.wait_until_streaming("sha1", "sha256")
            nursery.cancel_scope.cancel()
    assert server.accounts.logins_ok == 2
    assert server.accounts.logins_failed == 0


@pytest.mark.parametrize(
    ("kind", "reason"),
    [(FaultKind.DROP, "connection_lost"), (FaultKind.OUT_OF_SERVICE, "out_of_service")],
)
async def test_recovery_after_a_fault(tmp_path: Path, kind: FaultKind, reason: str) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, rate=50.0)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            server.inject(Fault(kind))
            await poll(lambda: not exporter.streaming("home"), within=5)
            down = await exporter.samples()
            await exporter.wait_until_streaming("home")
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    assert value_of(down, "loxone_up", miniserver="home") == 0
    # Values stay while the loss is younger than stale_after_seconds (60 s by default).
    assert select(down, "loxone_control_value", miniserver="home")
    assert value_of(samples, "loxone_up", miniserver="home") == 1
    assert (
        value_of(samples, "loxone_exporter_reconnects_total", miniserver="home", reason=reason) == 1
    )


async def test_values_are_dropped_after_stale_after_seconds(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server)], stale_after_seconds=0.2
            )
            await exporter.wait_until_streaming("home")
            server.inject(Fault(FaultKind.BOOT, seconds=30))  # cut, and no way back for now

            async def values_gone() -> bool:
                samples = await exporter.samples()
                return not select(samples, "loxone_control_value", miniserver="home")

            await poll_async(values_gone, within=5)
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    assert value_of(samples, "loxone_up", miniserver="home") == 0
    assert select(
        samples, "loxone_exporter_reconnects_total", miniserver="home", reason="connection_lost"
    )


async def test_structure_change_replaces_series_at_once(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            before = await exporter.samples()
            server.inject(Fault(FaultKind.STRUCTURE_CHANGE))
            await poll(lambda: not exporter.streaming("home"), within=5)
            await exporter.wait_until_streaming("home")
            values = (await sim_values(server.port))["values"]
            expected = len(expected_control_values(server.model.document, values, "home"))
            await poll_async(lambda: _count_is(exporter, "loxone_control_value", expected))
            after = await exporter.samples()
            nursery.cancel_scope.cancel()
    assert_every_numeric_state_once_per_owner(after, server.model.document, values, "home")
    controls_before = {dict(k[1])["uuid"] for k in select(before, "loxone_control_info")}
    controls_after = {dict(k[1])["uuid"] for k in select(after, "loxone_control_info")}
    assert controls_before - controls_after, "the removed control is still exported"
    assert controls_after - controls_before, "the added control is missing"


async def test_output_passes_promtool_and_the_openmetrics_parser(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=80, rate=100.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server)], include_text=True, typed=True
            )
            await exporter.wait_until_streaming("home")
            text = await exporter.scrape()
            openmetrics = await exporter.scrape(
                accept="application/openmetrics-text;version=1.0.0,text/plain;q=0.5"
            )
            nursery.cancel_scope.cancel()
    assert openmetrics.endswith("# EOF\n")
    families = {family.name for family in openmetrics_families(openmetrics)}
    assert {"loxone_control_value", "loxone_up", "loxone_exporter_events"} <= families
    # The typed families too (promtool lints their names and units below).
    assert {
        "loxone_control_temperature_celsius",
        "loxone_control_power_watts",
        "loxone_control_meter_energy_joules",
    } <= families
    assert "loxone_control_text" in text
    promtool = shutil.which("promtool")
    if promtool is None:
        reason = "promtool not on PATH (apt-get install -y prometheus)"
        if strict_mode():
            pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
        pytest.skip(reason)
    with trio.fail_after(30):
        result = await trio.run_process(
            [promtool, "check", "metrics"],
            stdin=text.encode(),
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
    assert result.returncode == 0, (result.stdout, result.stderr)


async def test_no_secret_in_any_log_line_through_login_and_reconnect(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    password = "s3cret-Pa55word"
    caplog.set_level(logging.DEBUG)
    users = (User("prom", password, HashAlgorithm.SHA256),)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, users=users, rate=50.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server, user="prom", password=password)]
            )
            await exporter.wait_until_streaming("home")
            server.inject(Fault(FaultKind.DROP))
            await poll(lambda: not exporter.streaming("home"), within=5)
            await exporter.wait_until_streaming("home")
            server.inject(Fault(FaultKind.TOKEN_EXPIRE))
            server.inject(Fault(FaultKind.DROP))
            await poll(lambda: not exporter.streaming("home"), within=5)
            await exporter.wait_until_streaming("home")
            metrics = await exporter.scrape()
            landing = (await http_request(exporter.port, "/")).body.decode()
            nursery.cancel_scope.cancel()
    tokens = [issued.token for issued in server.accounts.tokens]
    assert len(tokens) == 2  # the expired token was replaced by a new login
    secrets = [password, *tokens]
    assert len(caplog.records) > 10
    for secret in secrets:
        assert secret not in caplog.text
        assert secret not in metrics
        assert secret not in landing
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    # Session keys, IVs, one-time keys and salts are long hex strings; UUIDs are cut by dashes.
    assert not re.search(r"[0-9a-fA-F]{32,}", caplog.text)


async def test_several_listen_addresses_serve_the_same_metrics(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server)], listen=("127.0.0.1:0", "127.0.0.1:0")
            )
            await exporter.wait_until_streaming("home")
            ports = {int(url.rstrip("/").rsplit(":", 1)[1]) for url in exporter.handle.urls}
            answers = [await http_request(port, "/-/ready") for port in sorted(ports)]
            nursery.cancel_scope.cancel()
    assert len(ports) == 2
    assert [answer.status for answer in answers] == [200, 200]


@pytest.mark.parametrize("quirk", [FaultKind.TABLES_BEFORE_ACK, FaultKind.ESTIMATED_HEADERS])
async def test_firmware_quirks_lose_nothing(tmp_path: Path, quirk: FaultKind) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            server.inject(Fault(quirk))
            exporter = await start_exporter(nursery, tmp_path, [miniserver(server)])
            await exporter.wait_until_streaming("home")
            values = (await sim_values(server.port))["values"]
            document = server.model.document
            expected = len(expected_control_values(document, values, "home"))
            await poll_async(lambda: _count_is(exporter, "loxone_control_value", expected))
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    assert_every_numeric_state_once_per_owner(samples, document, values, "home")


async def test_filters_drop_controls_and_count_them(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=60)
            document = server.model.document
            rooms = {room["uuid"]: room["name"] for room in document["rooms"].values()}
            top = list(document["controls"].values())
            excluded_room = rooms[top[0]["room"]]
            excluded_type = next(
                c["type"] for c in top if rooms.get(c.get("room")) != excluded_room
            )
            exporter = await start_exporter(
                nursery,
                tmp_path,
                [miniserver(server)],
                exclude_rooms=(excluded_room,),
                exclude_types=(excluded_type,),
            )
            await exporter.wait_until_streaming("home")
            await poll_async(lambda: _any(exporter, "loxone_control_value"))
            samples = await exporter.samples()
            nursery.cancel_scope.cancel()
    info = [dict(labels) for name, labels in select(samples, "loxone_control_info")]
    assert info
    assert not [i for i in info if i["room"] == excluded_room or i["control_type"] == excluded_type]
    discovered = value_of(
        samples, "loxone_exporter_controls", miniserver="home", status="discovered"
    )
    exported = value_of(samples, "loxone_exporter_controls", miniserver="home", status="exported")
    assert discovered == sum(1 for _ in walk_controls(document))
    assert exported == len(info) < discovered


async def _any(exporter: Any, name: str) -> bool:
    return bool(select(await exporter.samples(), name))


async def test_tls_on_with_a_pinned_certificate_and_a_refused_one(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            handle = await nursery.start(
                serve_simulator,
                SimulatorOptions(
                    port=0, controls=20, rate=0.0, tls=True, tls_cert_file=tmp_path / "sim.pem"
                ),
            )
            server = handle.servers[0]
            pinned = attrs.evolve(
                miniserver(server, "pinned"),
                tls="on",
                tls_port=server.port,
                tls_ca_file=str(handle.tls_cert_file),
            )
            unpinned = attrs.evolve(miniserver(server, "unpinned"), tls="on", tls_port=server.port)
            exporter = await start_exporter(nursery, tmp_path, [pinned, unpinned])
            await exporter.wait_until_streaming("pinned")

            async def refused() -> bool:
                samples = await exporter.samples()
                return bool(
                    value_of(
                        samples,
                        "loxone_exporter_reconnects_total",
                        miniserver="unpinned",
                        reason="tls_error",
                    )
                )

            await poll_async(refused, within=10)
            views = {view.name: view for view in exporter.handle.owner.views()}
            nursery.cancel_scope.cancel()
    assert not views["unpinned"].streaming
    # Said at once and in plain words, not as a timeout.
    assert "certificate" in views["unpinned"].state
    assert "tls_ca_file" in views["unpinned"].state
