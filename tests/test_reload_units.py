"""The parts of a reload on their own: the plan (pure), and the state owner's reload methods."""

from __future__ import annotations

import logging
import os
import signal

import attrs
import pytest
import trio
import trio.testing
from exporter_harness import poll
from owner_feed import (
    WallClock,
    expected_control_values,
    family,
    feed,
    make_owner,
    rendered_family,
    series_of,
    start_streaming,
    tables,
)

from loxone_trio_exporter.commands import SignalHandler
from loxone_trio_exporter.config import (
    Config,
    ExportConfig,
    LogConfig,
    MiniserverConfig,
    WebConfig,
)
from loxone_trio_exporter.logs import mask_secrets
from loxone_trio_exporter.runtime import ConfigSource, plan_reload, summary
from loxone_trio_exporter.runtime._families import reload_families
from loxone_trio_exporter.runtime._messages import (
    ConnectionRemoved,
    Message,
    ReconnectReason,
    SessionLost,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver


def ms(name, **settings):
    fields = {"host": "10.0.0.1", "username": "u", "password": "p"}
    return MiniserverConfig(name=name, **(fields | settings))


def config(*miniservers, **settings):
    return Config(miniservers=miniservers, state_dir="/state", **settings)


# ------------------------------------------------------------------------------------- the plan


def test_miniservers_are_compared_by_name_and_every_setting():
    running = config(ms("home"), ms("garage"), ms("office"), ms("shed"))
    loaded = config(
        ms("new"),
        ms("home"),
        ms("office", password="n3w-Secret"),
        ms("shed", tls="on"),
    )
    plan = plan_reload(running, loaded)
    assert plan.unchanged == ("home",)
    assert plan.added == ("new",)
    assert plan.removed == ("garage",)
    assert plan.changed == ("office", "shed")
    assert (plan.export_changed, plan.log_changed, plan.warnings) == (False, False, ())
    assert plan.config == loaded
    assert summary(plan) == "added new; removed garage; restarted office, shed; 1 unchanged"
    assert "n3w-Secret" not in repr(plan)  # nor is the password in a repr


def test_web_listen_telemetry_path_and_state_dir_need_a_restart_and_are_kept():
    running = config(ms("home"), web=WebConfig(listen=("0.0.0.0:9504",)))
    loaded = attrs.evolve(
        running,
        web=WebConfig(
            listen=("127.0.0.1:9600",), telemetry_path="/m", web_config_file="/etc/web.yml"
        ),
        state_dir="/elsewhere",
        log=LogConfig(level="debug"),
        export=ExportConfig(typed=False, include_text=True),
    )
    plan = plan_reload(running, loaded)
    assert [warning.split(" changed")[0] for warning in plan.warnings] == [
        "[web] listen",
        "[web] telemetry_path",
        "state_dir",
    ]
    assert all("needs a restart" in warning for warning in plan.warnings)
    assert plan.config.web.listen == ("0.0.0.0:9504",)
    assert plan.config.web.telemetry_path == "/metrics"
    assert plan.config.state_dir == "/state"
    # Everything else is taken as loaded (web_config_file is not this module's business).
    assert plan.config.web.web_config_file == "/etc/web.yml"
    assert plan.config.log == LogConfig(level="debug")
    assert (plan.export_changed, plan.log_changed) == (True, True)
    assert plan.unchanged == ("home",)


def test_a_config_source_keeps_the_environment_of_the_start_and_never_shows_it():
    environ = {"LOXONE_HOST": "10.0.0.1", "LOXONE_PASSWORD": "env-S3cret"}
    source = ConfigSource(None, environ)
    environ["LOXONE_HOST"] = "10.0.0.2"
    assert source.environ["LOXONE_HOST"] == "10.0.0.1"
    assert "env-S3cret" not in repr(source)
    assert source.describe() == "the LOXONE_* environment"


def test_mask_replaces_longer_secrets_first():
    masked = mask_secrets("pass and password", {"pass", "password", ""})
    assert masked == "<redacted> and <redacted>"


# ------------------------------------------------------------------------------ the state owner


def test_added_miniservers_show_at_once_in_config_order():
    owner = make_owner(["home", "office"])
    owner.add_miniserver("garage")
    owner.sort_miniservers(["garage", "office", "home"])
    assert [view.name for view in owner.views()] == ["garage", "office", "home"]
    assert list(family(owner.snapshot(), "loxone_up").series.values()) == [0.0, 0.0, 0.0]
    assert owner.views()[0].state == "connecting"
    with pytest.raises(ValueError, match="already"):
        owner.add_miniserver("home")


def test_a_removal_is_announced_once_applied_even_for_an_unknown_name():
    owner = make_owner(["home"])
    home, stranger = owner.removal_applied("home"), owner.removal_applied("stranger")
    assert owner.removal_applied("home") is home  # asking twice gives the same event
    owner.apply(ConnectionRemoved("home"), 0.0)
    owner.apply(ConnectionRemoved("stranger"), 0.0)
    assert home.is_set()
    assert stranger.is_set()
    assert owner.views() == ()
    # A Miniserver added again after its removal starts over.
    owner.add_miniserver("home")
    assert owner.views()[0].state == "connecting"


def test_new_filters_rebuild_the_series_from_the_last_states_and_keep_the_counters():
    model = SimulatedMiniserver.generate(60, seed=3)
    owner = make_owner(include_text=True)
    start_streaming(owner, "home", model)
    feed(owner, tables("home", model.step(300)))
    full_values = rendered_family(owner, "loxone_control_value")
    full_texts = series_of(owner, "loxone_control_text")
    full_daytimers = series_of(owner, "loxone_daytimer_entries")
    events = series_of(owner, "loxone_exporter_events_total")
    weather = series_of(owner, "loxone_weather_temperature_celsius")
    types = sorted({dict(labels)["control_type"] for _, labels in full_values})
    excluded = "Daytimer" if "Daytimer" in types else types[0]
    assert full_daytimers

    owner.set_export(ExportConfig(typed=False, include_text=True, exclude_types=(excluded,)))
    narrowed = rendered_family(owner, "loxone_control_value")
    assert narrowed == {
        key: value for key, value in full_values.items() if ("control_type", excluded) not in key[1]
    }
    assert narrowed != full_values
    info = series_of(owner, "loxone_control_info")
    assert all(dict(labels)["control_type"] != excluded for labels in info)

    # Changes that arrive while filtered out are remembered too.
    feed(owner, tables("home", model.step(300)))
    owner.set_export(ExportConfig(typed=False, include_text=True))
    assert rendered_family(owner, "loxone_control_value") == expected_control_values("home", model)
    assert len(series_of(owner, "loxone_control_text")) == len(full_texts)
    assert series_of(owner, "loxone_daytimer_entries").keys() == full_daytimers.keys()
    assert series_of(owner, "loxone_weather_temperature_celsius").keys() == weather.keys()
    # Replaying the last states is not news from the Miniserver: events count the wire only.
    value_events = (("miniserver", "home"), ("table", "value"))
    assert series_of(owner, "loxone_exporter_events_total")[value_events] == (
        events[value_events] + 300
    )


def test_include_text_applies_with_the_next_snapshot():
    model = SimulatedMiniserver.generate(30, seed=4)
    owner = make_owner()
    start_streaming(owner, "home", model)
    assert "loxone_control_text" not in [f.name for f in owner.snapshot()]
    owner.set_export(ExportConfig(typed=False, include_text=True))
    assert series_of(owner, "loxone_control_text")


def test_stale_values_do_not_come_back_with_new_filters():
    model = SimulatedMiniserver.generate(20, seed=5)
    owner = make_owner(stale_after_seconds=10)
    start_streaming(owner, "home", model)
    owner.apply(SessionLost("home", ReconnectReason.CLOSED, "closed"), 0.0)
    owner.drop_stale(10.0)
    assert series_of(owner, "loxone_control_value") == {}
    owner.set_export(ExportConfig(typed=False, stale_after_seconds=10, exclude_names=("nothing*",)))
    assert series_of(owner, "loxone_control_value") == {}


async def _owner_task(nursery, model):
    owner = make_owner(stale_after_seconds=60)
    send_channel, receive_channel = trio.open_memory_channel[Message](100)
    await nursery.start(owner.run, receive_channel)
    start_streaming(owner, "home", model)
    return owner, send_channel


@pytest.mark.parametrize(("new_stale", "dropped_at"), [(20.0, 20.0), (100.0, 100.0), (5.0, 10.0)])
async def test_a_new_stale_after_moves_a_pending_deadline(
    nursery, autojump_clock, new_stale, dropped_at
):
    model = SimulatedMiniserver.generate(10, seed=6)
    owner, send_channel = await _owner_task(nursery, model)
    start = trio.current_time()
    await send_channel.send(SessionLost("home", ReconnectReason.CLOSED, "closed"))
    await trio.sleep(10)
    owner.set_export(
        ExportConfig(typed=False, stale_after_seconds=new_stale)
    )  # the owner task waits
    if dropped_at > 10:
        await trio.sleep_until(start + dropped_at - 0.001)
        await trio.testing.wait_all_tasks_blocked()
        assert series_of(owner, "loxone_control_value")
        await trio.sleep_until(start + dropped_at)
    # else: the new deadline (5 s after the loss) has passed already: due at once.
    await trio.testing.wait_all_tasks_blocked()
    assert trio.current_time() == start + dropped_at
    assert series_of(owner, "loxone_control_value") == {}


def test_reload_status_and_its_gauges():
    wall = WallClock(1_750_000_000.0)
    owner = make_owner(wall_clock=wall)
    assert owner.reload_status.successful
    assert owner.reload_status.last_success_unix == 1_750_000_000.0
    wall.now += 5
    owner.record_reload(successful=False)
    gauges = {f.name: dict(f.series) for f in reload_families(owner.reload_status)}
    assert gauges == {
        "loxone_exporter_config_last_reload_successful": {(): 0.0},
        "loxone_exporter_config_last_reload_success_timestamp_seconds": {(): 1_750_000_000.0},
    }
    wall.now += 5
    owner.record_reload(successful=True)
    gauges = {f.name: dict(f.series) for f in reload_families(owner.reload_status)}
    assert gauges["loxone_exporter_config_last_reload_successful"] == {(): 1.0}
    assert gauges["loxone_exporter_config_last_reload_success_timestamp_seconds"] == {
        (): 1_750_000_010.0
    }


# ------------------------------------------------------------------------------------- signals


async def test_sighup_reloads_and_only_sigterm_stops(caplog):
    caplog.set_level(logging.INFO)
    shutdown = trio.Event()
    handler = SignalHandler(shutdown)
    reloads: list[float] = []

    async def reload() -> None:
        reloads.append(trio.current_time())

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(handler.run)
            os.kill(os.getpid(), signal.SIGHUP)  # before the exporter runs: nothing to reload
            await poll(lambda: "no config to reload" in caplog.text)
            handler.reload = reload
            os.kill(os.getpid(), signal.SIGHUP)
            await poll(lambda: len(reloads) == 1)
            assert not shutdown.is_set()
            os.kill(os.getpid(), signal.SIGTERM)
            await shutdown.wait()
    assert "SIGTERM received; stopping" in caplog.text
