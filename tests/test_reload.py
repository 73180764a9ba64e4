"""Config reload end to end: the real exporter, real simulators on loopback, the config on disk.

Each test writes an exporter.toml, starts the exporter from it as ``run`` does, changes the file
and reloads (the handle's ``reload``, which SIGHUP also calls, or ``POST /-/reload``), then looks
at the simulators (logins, WebSocket sessions) and at ``/metrics``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import trio
from exporter_harness import (
    Exporter,
    SeriesKey,
    miniserver,
    poll,
    poll_async,
    select,
    start_exporter,
    start_exporter_from_file,
    start_simulator,
    value_of,
    write_config,
)
from http_client import http_request

from loxone_trio_exporter.config import LogConfig, MiniserverConfig
from loxone_trio_exporter.runtime import ConfigSource, ReloadResult
from loxone_trio_exporter.simulator import User
from loxone_trio_exporter.supervisor import run_exporter

SUCCESSFUL = "loxone_exporter_config_last_reload_successful"
SUCCESS_TIME = "loxone_exporter_config_last_reload_success_timestamp_seconds"
SECRET = "s3cret-Reload-Pass"  # a password that would stand out in any log line or answer


async def exporter_from_file(
    nursery: trio.Nursery, tmp_path: Path, miniservers: list[MiniserverConfig]
) -> tuple[Exporter, Path]:
    """The exporter run from a config file of ``miniservers``, and that file (to rewrite)."""
    config_file = tmp_path / "exporter.toml"
    write_config(config_file, tmp_path, miniservers)
    return await start_exporter_from_file(nursery, config_file), config_file


async def reload(exporter: Exporter) -> ReloadResult:
    assert exporter.handle.reload is not None
    return await exporter.handle.reload()


def miniservers_in(samples: Mapping[SeriesKey, float]) -> set[str]:
    """Every ``miniserver`` label value of any series."""
    return {value for _, labels in samples for key, value in labels if key == "miniserver"}


async def values_arrived(exporter: Exporter, name: str) -> bool:
    return bool(select(await exporter.samples(), "loxone_control_value", miniserver=name))


async def test_unchanged_keeps_its_session_a_new_one_starts_a_removed_one_stops(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            home_sim = await start_simulator(nursery, seed=1)
            garage_sim = await start_simulator(nursery, seed=2)
            office_sim = await start_simulator(nursery, seed=3)
            home = miniserver(home_sim, "home")
            garage = attrs.evolve(miniserver(garage_sim, "garage"), kill_token_on_exit=True)
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home, garage])
            await exporter.wait_until_streaming("home", "garage")
            await poll_async(lambda: values_arrived(exporter, "garage"))
            logins = home_sim.accounts.logins_ok
            (session,) = home_sim.clients

            write_config(config_file, tmp_path, [miniserver(office_sim, "office"), home])
            result = await reload(exporter)

            assert result.successful, result.message
            assert (result.added, result.removed, result.restarted, result.unchanged) == (
                ("office",),
                ("garage",),
                (),
                ("home",),
            )
            assert "added office; removed garage; 1 unchanged" in result.message
            # The removal is applied when the reload answers: no series of garage is left.
            assert exporter.handle.owner.miniserver_names == ("office", "home")
            assert "garage" not in miniservers_in(await exporter.samples())
            # Pages and series follow the new config order.
            assert [view.name for view in exporter.handle.owner.views()] == ["office", "home"]
            await exporter.wait_until_streaming("office")
            await poll_async(lambda: values_arrived(exporter, "office"))
            await poll(lambda: not garage_sim.clients)  # its session was closed
            assert len(garage_sim.accounts.tokens) == 0  # with a goodbye: kill_token_on_exit
            # home kept its session: no new login, the same WebSocket.
            assert home_sim.accounts.logins_ok == logins
            assert home_sim.clients == {session}
            samples = await exporter.samples()
            assert value_of(samples, "loxone_up", miniserver="home") == 1
            assert value_of(samples, SUCCESSFUL) == 1
            nursery.cancel_scope.cancel()


async def test_a_miniserver_with_changed_settings_restarts(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            old_sim = await start_simulator(nursery, seed=1)
            new_sim = await start_simulator(nursery, seed=2)
            other_sim = await start_simulator(nursery, seed=3)
            other = miniserver(other_sim, "other")
            exporter, config_file = await exporter_from_file(
                nursery, tmp_path, [miniserver(old_sim, "home"), other]
            )
            await exporter.wait_until_streaming("home", "other")
            await poll_async(lambda: values_arrived(exporter, "home"))
            other_logins = other_sim.accounts.logins_ok

            # Same name, another port: a different Miniserver as far as the exporter knows.
            write_config(config_file, tmp_path, [miniserver(new_sim, "home"), other])
            result = await reload(exporter)

            assert result.successful, result.message
            assert (result.restarted, result.unchanged) == (("home",), ("other",))
            await poll(lambda: not old_sim.clients)
            await exporter.wait_until_streaming("home")
            await poll_async(lambda: values_arrived(exporter, "home"))
            samples = await exporter.samples()
            # Every control series of home now comes from the new Miniserver's structure.
            new_controls = {c.uuid_action for c in new_sim.model.structure.walk_controls()}
            old_controls = {c.uuid_action for c in old_sim.model.structure.walk_controls()}
            assert new_controls.isdisjoint(old_controls)  # the simulators differ (seeds)
            home_series = select(samples, "loxone_control_value", miniserver="home")
            assert {dict(labels)["uuid"] for _, labels in home_series} <= new_controls
            assert new_sim.accounts.logins_ok == 1
            assert other_sim.accounts.logins_ok == other_logins
            nursery.cancel_scope.cancel()


async def test_an_invalid_config_changes_nothing_and_a_valid_one_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery, users=(User("reload", SECRET),))
            home = miniserver(sim, "home", user="reload", password=SECRET)
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home])
            await exporter.wait_until_streaming("home")
            samples = await exporter.samples()
            assert value_of(samples, SUCCESSFUL) == 1
            started_at = value_of(samples, SUCCESS_TIME)
            logins = sim.accounts.logins_ok
            (session,) = sim.clients

            # Two mistakes: every one is reported. They come with a new Miniserver, which must
            # not start either.
            write_config(config_file, tmp_path, [home], tables={"export": {"typo": True}})
            with config_file.open("a", encoding="utf-8") as file:
                file.write(
                    '\n[[miniserver]]\nname = "garage"\nhost = "127.0.0.1"\nport = 70000\n'
                    f'username = "reload"\npassword = "{SECRET}"\n'
                )
            result = await reload(exporter)

            assert not result.successful
            assert any("miniserver[1].port" in error for error in result.errors)
            assert any("export.typo" in error for error in result.errors)
            errors_logged = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
            for error in result.errors:
                assert any(error in line for line in errors_logged), error
            samples = await exporter.samples()
            assert value_of(samples, SUCCESSFUL) == 0
            assert value_of(samples, SUCCESS_TIME) == started_at
            assert miniservers_in(samples) == {"home"}
            assert value_of(samples, "loxone_up", miniserver="home") == 1
            assert (sim.accounts.logins_ok, sim.clients) == (logins, {session})

            # A broken TOML line holding the password: the error must not repeat it.
            config_file.write_text(
                config_file.read_text("utf-8").replace(f'"{SECRET}"', f'"{SECRET}\n'), "utf-8"
            )
            broken = await reload(exporter)
            assert not broken.successful
            assert "invalid TOML" in broken.message

            write_config(config_file, tmp_path, [home])
            fixed = await reload(exporter)
            assert fixed.successful, fixed.message
            samples = await exporter.samples()
            assert value_of(samples, SUCCESSFUL) == 1
            assert value_of(samples, SUCCESS_TIME) >= started_at
            assert (sim.accounts.logins_ok, sim.clients) == (logins, {session})
            nursery.cancel_scope.cancel()
    for text in (result.message, broken.message, fixed.message, caplog.text):
        assert SECRET not in text


async def test_settings_that_cannot_be_set_up_fail_the_reload_before_anything_changes(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            home_sim = await start_simulator(nursery, seed=1)
            office_sim = await start_simulator(nursery, seed=2)
            home = miniserver(home_sim, "home")
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home])
            await exporter.wait_until_streaming("home")
            (session,) = home_sim.clients

            # Valid as a config, but no TLS context can be made from a missing CA file: found
            # while preparing, before the running home session is stopped.
            missing_ca = {"tls": "on", "tls_ca_file": str(tmp_path / "missing-ca.pem")}
            changed_home = attrs.evolve(home, **missing_ca)
            office = miniserver(office_sim, "office")
            write_config(config_file, tmp_path, [changed_home, office])
            result = await reload(exporter)

            assert not result.successful
            assert result.errors == ("miniserver[0]: cannot be set up: No such file or directory",)
            assert exporter.handle.owner.miniserver_names == ("home",)
            assert home_sim.clients == {session}
            assert not office_sim.clients
            assert value_of(await exporter.samples(), SUCCESSFUL) == 0
            nursery.cancel_scope.cancel()


async def test_export_changes_apply_without_a_reconnect(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery, controls=60)
            home = miniserver(sim, "home")
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home])
            await exporter.wait_until_streaming("home")
            current = (await http_request(sim.port, "/sim/values")).json()
            values = current["values"]
            full_tables = {"value": len(values), "text": len(current["texts"])}
            await poll_async(lambda: _counted(exporter, full_tables))
            before = select(await exporter.samples(), "loxone_control_value")
            room = _a_room_of(before)
            logins = sim.accounts.logins_ok
            (session,) = sim.clients

            tables = {"export": {"exclude_rooms": [room], "include_text": True}}
            write_config(config_file, tmp_path, [home], tables=tables)
            narrowed = await reload(exporter)
            assert narrowed.successful, narrowed.message
            assert "[export] applied" in narrowed.message
            samples = await exporter.samples()
            rooms = {dict(labels)["room"] for _, labels in select(samples, "loxone_control_info")}
            assert room not in rooms
            kept = select(samples, "loxone_control_value")
            assert kept == {key: v for key, v in before.items() if dict(key[1])["room"] != room}
            assert select(samples, "loxone_control_text")  # include_text took effect at once
            exported = value_of(samples, "loxone_exporter_controls", status="exported")
            discovered = value_of(samples, "loxone_exporter_controls", status="discovered")
            assert exported < discovered

            # Back to no filter: the excluded series return at once with their current values,
            # though the Miniserver sends nothing new (rate 0) and the session is the same.
            write_config(config_file, tmp_path, [home])
            widened = await reload(exporter)
            assert widened.successful, widened.message
            samples = await exporter.samples()
            assert select(samples, "loxone_control_value") == before
            assert not select(samples, "loxone_control_text")
            assert (sim.accounts.logins_ok, sim.clients) == (logins, {session})
            assert (await http_request(sim.port, "/sim/values")).json()["values"] == values
            nursery.cancel_scope.cancel()


async def test_a_miniserver_s_max_series_applies_on_reload_without_a_reconnect(
    tmp_path: Path,
) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery, controls=40)
            home = miniserver(sim, "home")
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home])
            await exporter.wait_until_streaming("home")
            current = (await http_request(sim.port, "/sim/values")).json()
            full_tables = {"value": len(current["values"]), "text": len(current["texts"])}
            await poll_async(lambda: _counted(exporter, full_tables))
            before = await exporter.samples()
            every = value_of(before, "loxone_exporter_series", status="exported")
            assert value_of(before, "loxone_exporter_series", status="limited") == 0
            (session,) = sim.clients

            write_config(config_file, tmp_path, [attrs.evolve(home, max_series=5)])
            limited = await reload(exporter)
            assert limited.successful, limited.message
            assert "max_series applied" in limited.message
            assert limited.unchanged == ("home",)
            samples = await exporter.samples()
            assert value_of(samples, "loxone_exporter_series", status="exported") == 5
            assert value_of(samples, "loxone_exporter_series", status="limited") == every - 5
            values = select(samples, "loxone_control_value")
            assert 0 < len(values) <= 5
            assert values.items() <= select(before, "loxone_control_value").items()

            # Without the limit again: every series is back at once, from the same session.
            write_config(config_file, tmp_path, [home])
            assert (await reload(exporter)).successful
            samples = await exporter.samples()
            assert select(samples, "loxone_control_value") == select(before, "loxone_control_value")
            assert value_of(samples, "loxone_exporter_series", status="limited") == 0
            assert sim.clients == {session}
            nursery.cancel_scope.cancel()


async def _counted(exporter: Exporter, events: Mapping[str, int]) -> bool:
    """True once ``loxone_exporter_events_total`` of each table reached ``events``: the
    Miniserver's full tables are applied (it sends nothing else at rate 0)."""
    samples = await exporter.samples()
    counted = {
        table: select(samples, "loxone_exporter_events_total", table=table) for table in events
    }
    return all(sum(counted[table].values()) >= events[table] for table in events)


def _a_room_of(series: Mapping[SeriesKey, float]) -> str:
    rooms = sorted({dict(labels)["room"] for _, labels in series} - {""})
    assert len(rooms) > 1, rooms  # excluding one must leave others
    return rooms[0]


async def test_post_reload_answers_200_or_500_with_text_and_get_is_405(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery, users=(User("reload", SECRET),))
            home = miniserver(sim, "home", user="reload", password=SECRET)
            exporter, config_file = await exporter_from_file(nursery, tmp_path, [home])
            await exporter.wait_until_streaming("home")
            port = exporter.port

            ok = await http_request(port, "/-/reload", method="POST")
            assert ok.status == 200
            assert ok.headers["content-type"] == "text/plain; charset=utf-8"
            assert ok.body.decode().startswith(f"config reloaded from {config_file}:")

            config_file.write_text(
                config_file.read_text("utf-8").replace(f"port = {sim.port}", "port = 0"), "utf-8"
            )
            failed = await http_request(port, "/-/reload", method="POST")
            assert failed.status == 500
            text = failed.body.decode()
            assert text.startswith(f"failed to reload config from {config_file}")
            assert "miniserver[0].port" in text
            assert SECRET not in text
            assert value_of(await exporter.samples(), SUCCESSFUL) == 0

            for method in ("GET", "PUT", "DELETE"):
                response = await http_request(port, "/-/reload", method=method)
                assert response.status == 405, method
                assert response.headers["allow"] == "POST"
            write_config(config_file, tmp_path, [home])
            assert (await http_request(port, "/-/reload", method="POST")).status == 200
            assert value_of(await exporter.samples(), SUCCESSFUL) == 1

            # An exporter that was given no config source has no reload endpoint.
            plain = await start_exporter(nursery, tmp_path / "plain", [home])
            assert plain.handle.reload is None
            assert (await http_request(plain.port, "/-/reload", method="POST")).status == 404
            nursery.cancel_scope.cancel()


async def test_web_and_state_dir_changes_warn_and_are_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    applied: list[tuple[LogConfig, list[str]]] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery)
            home = miniserver(sim, "home")
            config_file = tmp_path / "exporter.toml"
            write_config(config_file, tmp_path, [home])
            exporter = await start_exporter_from_file(
                nursery,
                config_file,
                setup_logging=lambda log, secrets: applied.append((log, list(secrets))),
            )
            await exporter.wait_until_streaming("home")
            tables: dict[str, dict[str, Any]] = {
                "web": {"telemetry_path": "/other"},
                "log": {"level": "debug", "format": "json"},
            }
            write_config(
                config_file, tmp_path / "elsewhere", [home], listen=("127.0.0.1:1",), tables=tables
            )
            with caplog.at_level(logging.WARNING):
                result = await reload(exporter)
            assert result.successful, result.message
            assert len(result.warnings) == 3
            for words in ("listen", "telemetry_path", "state_dir"):
                assert any(words in w and "needs a restart" in w for w in result.warnings)
                assert words in caplog.text
            assert applied == [(LogConfig(level="debug", format="json"), ["demo"])]
            # Still served where it was, on the old path.
            assert (await http_request(exporter.port, "/metrics")).status == 200
            assert (await http_request(exporter.port, "/other")).status == 404
            nursery.cancel_scope.cancel()


async def test_reloads_run_one_at_a_time(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            old_sim = await start_simulator(nursery, seed=1)
            new_sim = await start_simulator(nursery, seed=2)
            exporter, config_file = await exporter_from_file(
                nursery, tmp_path, [miniserver(old_sim, "home")]
            )
            await exporter.wait_until_streaming("home")
            write_config(config_file, tmp_path, [miniserver(new_sim, "home")])
            results: list[ReloadResult] = []

            async def reload_into_results() -> None:
                results.append(await reload(exporter))

            async with trio.open_nursery() as both:
                both.start_soon(reload_into_results)
                both.start_soon(reload_into_results)
            # The second waited for the first, then found nothing left to change.
            assert [(r.successful, r.restarted, r.unchanged) for r in results] == [
                (True, ("home",), ()),
                (True, (), ("home",)),
            ]
            await exporter.wait_until_streaming("home")
            assert new_sim.accounts.logins_ok == 1
            nursery.cancel_scope.cancel()


async def test_environment_only_reload_reads_the_same_environment(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery)
            environ = {
                "LOXONE_NAME": "envhome",
                "LOXONE_HOST": "127.0.0.1",
                "LOXONE_PORT": str(sim.port),
                "LOXONE_USERNAME": "demo",
                "LOXONE_PASSWORD": "demo",
                "LOXONE_LISTEN": "127.0.0.1:0",
                "XDG_STATE_HOME": str(tmp_path),
            }
            source = ConfigSource(None, environ)
            environ["LOXONE_PORT"] = "1"  # the source keeps what it was given at start
            config = source.load()
            shutdown = trio.Event()
            handle = await nursery.start(partial(run_exporter, config, shutdown, source=source))
            assert handle.reload is not None
            result = await handle.reload()
            assert result.successful, result.message
            assert result.unchanged == ("envhome",)
            assert "the LOXONE_* environment" in result.message
            nursery.cancel_scope.cancel()


async def test_a_reload_of_the_same_config_ends_a_long_wait(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            sim = await start_simulator(nursery)
            exporter, _ = await exporter_from_file(
                nursery, tmp_path, [miniserver(sim, "home", password="wrong")]
            )
            await poll(lambda: sim.accounts.logins_failed == 1)
            (view,) = exporter.handle.owner.views()
            assert view.state.startswith("waiting")  # 30-60 s after a refused password

            result = await reload(exporter)  # nothing changed: the operator says "try now"

            assert result.unchanged == ("home",)
            await poll(lambda: sim.accounts.logins_failed == 2, within=5)
            nursery.cancel_scope.cancel()
