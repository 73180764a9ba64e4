"""The state owner: messages in, snapshots and views out, on real structures and real tables."""

from __future__ import annotations

import json
import logging
import operator

from exporter_harness import walk_controls
from owner_feed import (
    WallClock,
    expected_control_values,
    expected_global_values,
    family,
    family_series,
    feed,
    make_owner,
    miniserver_of,
    parsed_series,
    render,
    rendered_family,
    series_of,
    start_streaming,
    structure_ready,
    tables,
)
from structure_oracle import expected_info, state_owners, without_label

from loxone_trio_exporter.exposition import Renderer
from loxone_trio_exporter.runtime._messages import (
    ConnectionRemoved,
    ConnectionState,
    MiniserverIdentified,
    ReconnectReason,
    SessionLost,
    StatusChanged,
    TokenUpdated,
)
from loxone_trio_exporter.simulator import SimulatedMiniserver

# ------------------------------------------------------------------------------ values per owner


def test_every_numeric_state_appears_once_per_owner_with_the_simulators_value():
    home, office = (
        SimulatedMiniserver.generate(60, seed=1),
        SimulatedMiniserver.generate(25, seed=2),
    )
    owner = make_owner(["home", "office"])
    start_streaming(owner, "home", home)
    start_streaming(owner, "office", office)
    for _ in range(5):
        feed(owner, tables("home", home.step(300)))
        feed(owner, tables("office", office.step(100)))
    expected = expected_control_values("home", home) | expected_control_values("office", office)
    assert rendered_family(owner, "loxone_control_value") == expected
    # Global states too, labelled by their globalStates name.
    assert rendered_family(owner, "loxone_global_value") == (
        expected_global_values("home", home) | expected_global_values("office", office)
    )
    info = without_label(rendered_family(owner, "loxone_control_info"), "unit", "total_unit")
    assert info == expected_info(home.document, "home") | expected_info(office.document, "office")
    assert set(rendered_family(owner, "loxone_control_info").values()) == {1.0}


def test_a_shared_state_uuid_updates_every_owner():
    model = SimulatedMiniserver.generate(60, seed=1)
    owners = state_owners(model.document, "home")
    values = model.values_snapshot()["values"]
    shared = [
        uuid
        for uuid, labels in owners.items()
        if len({dict(owner)["uuid"] for owner in labels}) > 1 and uuid in values
    ]
    assert shared, "the generated structure shares state UUIDs between controls"
    owner = make_owner()
    start_streaming(owner, "home", model)
    for number, uuid in enumerate(shared):
        before = rendered_family(owner, "loxone_control_value")
        new_value = 10_000.5 + number  # no state of the generated structure holds such a value
        assert new_value not in before.values()
        feed(owner, tables("home", [model.set_value(uuid, new_value)]))
        after = rendered_family(owner, "loxone_control_value")
        changed = {key: value for key, value in after.items() if before.get(key) != value}
        assert changed == {("loxone_control_value", labels): new_value for labels in owners[uuid]}
    assert rendered_family(owner, "loxone_control_value") == expected_control_values("home", model)


def test_series_order_and_lineage_are_kept_between_snapshots():
    model = SimulatedMiniserver.generate(40, seed=5)
    owner = make_owner()
    start_streaming(owner, "home", model)
    first = family(owner.snapshot(), "loxone_control_value")
    before = list(family_series(first))
    feed(owner, tables("home", model.step(200)))
    second = family(owner.snapshot(), "loxone_control_value")
    assert list(family_series(second)) == before
    # The same series at the same places: the renderer keeps the lines of unchanged values.
    (old_part,) = first.series.parts
    (new_part,) = second.series.parts
    assert new_part is not old_part
    assert new_part.lineage is old_part.lineage


# ------------------------------------------------------------------------ structure changes


def test_a_structure_change_replaces_the_series_at_once():
    model = SimulatedMiniserver.generate(40, seed=7)
    owner = make_owner()
    start_streaming(owner, "home", model)
    feed(owner, tables("home", model.step(500)))
    old_controls = {control["uuidAction"] for control, _ in walk_controls(model.document)}
    events_before = series_of(owner, "loxone_exporter_events_total")
    owner.apply(SessionLost("home", ReconnectReason.CLOSED, "closed"), 1.0)

    model.change_structure("2025-06-01 12:00:00")
    owner.apply(structure_ready("home", model), 2.0)
    # No value of the old structure survives, not even of controls that are still there.
    assert series_of(owner, "loxone_control_value") == {}
    new_controls = {control["uuidAction"] for control, _ in walk_controls(model.document)}
    info = without_label(rendered_family(owner, "loxone_control_info"), "unit", "total_unit")
    assert info == expected_info(model.document, "home")
    assert old_controls - new_controls
    assert new_controls - old_controls

    feed(owner, tables("home", model.full_tables()))
    assert rendered_family(owner, "loxone_control_value") == expected_control_values("home", model)
    # Counters go on across the change.
    events_after = series_of(owner, "loxone_exporter_events_total")
    value_events = (("miniserver", "home"), ("table", "value"))
    assert events_after[value_events] == events_before[value_events] + len(
        model.values_snapshot()["values"]
    )
    reconnects = series_of(owner, "loxone_exporter_reconnects_total")
    assert {labels: n for labels, n in reconnects.items() if n} == {
        (("miniserver", "home"), ("reason", "closed")): 1.0
    }


def test_the_same_structure_again_keeps_the_values():
    model = SimulatedMiniserver.generate(20, seed=8)
    owner = make_owner()
    start_streaming(owner, "home", model)
    before = series_of(owner, "loxone_control_value")
    owner.apply(SessionLost("home", ReconnectReason.KEEPALIVE_TIMEOUT, "no answer"), 1.0)
    owner.apply(structure_ready("home", model), 2.0)  # a reconnect that reused the structure
    assert series_of(owner, "loxone_control_value") == before


def test_tables_without_a_structure_are_counted_only():
    model = SimulatedMiniserver.generate(10, seed=9)
    owner = make_owner()
    feed(owner, tables("home", model.full_tables()))
    assert series_of(owner, "loxone_control_value") == {}
    events = series_of(owner, "loxone_exporter_events_total")
    assert events[(("miniserver", "home"), ("table", "value"))] == len(
        model.values_snapshot()["values"]
    )


# ------------------------------------------------------------------- connections and counters


def test_every_configured_miniserver_is_shown_from_the_start():
    owner = make_owner(["home", "office"])
    snapshot = owner.snapshot()
    assert family(snapshot, "loxone_up").series == {
        (("miniserver", "home"),): 0.0,
        (("miniserver", "office"),): 0.0,
    }
    for name in ("loxone_exporter_auth_failures_total", "loxone_exporter_protocol_errors_total"):
        assert list(family(snapshot, name).series.values()) == [0.0, 0.0]
    # Every reason at 0 from the start, so that increase() sees the first reconnect.
    reconnects = family(snapshot, "loxone_exporter_reconnects_total").series
    assert {dict(labels)["miniserver"] for labels in reconnects} == {"home", "office"}
    assert {dict(labels)["reason"] for labels in reconnects} == {r.value for r in ReconnectReason}
    assert set(reconnects.values()) == {0.0}
    for name in (
        "loxone_miniserver_info",
        "loxone_exporter_events_total",
        "loxone_exporter_token_expiry_timestamp_seconds",
        "loxone_exporter_structure_timestamp_seconds",
        "loxone_exporter_controls",
    ):
        assert family(snapshot, name).series == {}, name
    assert [(view.name, view.state, view.streaming) for view in owner.views()] == [
        ("home", "connecting", False),
        ("office", "connecting", False),
    ]


def test_session_losses_count_by_reason():
    owner = make_owner()
    feed(
        owner,
        [
            SessionLost(
                "home", ReconnectReason.AUTH_FAILED, "authentication failed", auth_failure=True
            ),
            SessionLost("home", ReconnectReason.PROTOCOL_ERROR, "bad frame", protocol_error=True),
            SessionLost(
                "home", ReconnectReason.AUTH_FAILED, "authentication failed", auth_failure=True
            ),
        ],
    )
    snapshot = owner.snapshot()
    home = (("miniserver", "home"),)
    reconnects = family(snapshot, "loxone_exporter_reconnects_total").series
    assert {labels: n for labels, n in reconnects.items() if n} == {
        (*home, ("reason", "auth_failed")): 2.0,
        (*home, ("reason", "protocol_error")): 1.0,
    }
    assert family(snapshot, "loxone_exporter_auth_failures_total").series == {home: 2.0}
    assert family(snapshot, "loxone_exporter_protocol_errors_total").series == {home: 1.0}


def test_views_say_what_the_connection_does():
    wall = WallClock(1_750_000_000.0)
    model = SimulatedMiniserver.generate(10, seed=11)
    owner = make_owner(["home", "office"], wall_clock=wall)
    owner.apply(MiniserverIdentified("home", "504F94A00001", "15.3.1"), 0.0)
    start_streaming(owner, "home", model)
    detail = "authentication failed (code 401): check username and password"
    feed(
        owner,
        [
            SessionLost("office", ReconnectReason.AUTH_FAILED, detail, auth_failure=True),
            StatusChanged("office", ConnectionState.WAITING, detail, retry_in_seconds=4.0),
        ],
    )
    home, office = owner.views()
    assert (home.name, home.streaming, home.state, home.firmware) == (
        "home",
        True,
        "streaming",
        "15.3.1",
    )
    assert home.series == len(series_of(owner, "loxone_control_value")) + len(
        series_of(owner, "loxone_global_value")
    )
    assert home.last_event_unix == wall.now
    assert office.state == f"waiting to reconnect: {detail}; next try in 4 s"
    assert not office.streaming
    wall.now += 2.5
    assert owner.views()[1].state.endswith("; next try in 2 s")
    wall.now += 10
    assert owner.views()[1].state.endswith("; next try in 0 s")
    owner.apply(StatusChanged("office", ConnectionState.AUTHENTICATING), 0.0)
    assert owner.views()[1].state == "authenticating"


def test_connection_removed_drops_everything_of_that_miniserver(caplog):
    home, office = (
        SimulatedMiniserver.generate(10, seed=1),
        SimulatedMiniserver.generate(10, seed=2),
    )
    owner = make_owner(["home", "office"])
    for name, model in (("home", home), ("office", office)):
        owner.apply(MiniserverIdentified(name, model.serial, "15.3.1"), 0.0)
        owner.apply(TokenUpdated(name, 1_760_000_000.0), 0.0)
        start_streaming(owner, name, model)
        owner.apply(SessionLost(name, ReconnectReason.CLOSED, "closed"), 0.0)
    office_before = {
        f.name: {k: v for k, v in family_series(f).items() if miniserver_of(k) == "office"}
        for f in owner.snapshot()
        if f.name != "loxone_exporter_build_info"
    }
    owner.apply(ConnectionRemoved("home"), 0.0)
    for metric in owner.snapshot():
        if metric.name == "loxone_exporter_build_info":
            continue
        series = family_series(metric)
        assert all(miniserver_of(labels) == "office" for labels in series), metric.name
        assert series == office_before[metric.name]
    assert [view.name for view in owner.views()] == ["office"]
    # Later messages for it are ignored (the removal itself is not news when repeated).
    with caplog.at_level(logging.DEBUG, logger="loxone_trio_exporter.state"):
        before = owner.snapshot()
        feed(owner, [*tables("home", home.step(10)), ConnectionRemoved("home")])
        assert owner.snapshot() is before
    assert "not configured" in caplog.text


# ----------------------------------------------------------------------------------- snapshots


def test_snapshot_is_cached_until_something_changes_and_never_mutated():
    model = SimulatedMiniserver.generate(20, seed=13)
    owner = make_owner()
    start_streaming(owner, "home", model)
    first = owner.snapshot()
    assert owner.snapshot() is first
    owner.views()  # reading views changes nothing
    assert owner.snapshot() is first
    published = {f.name: family_series(f) for f in first}
    feed(owner, tables("home", model.step(100)))
    second = owner.snapshot()
    assert second is not first
    assert {f.name: family_series(f) for f in first} == published
    values = family_series(family(second, "loxone_control_value"))
    assert values != published["loxone_control_value"]


def test_a_quiet_miniservers_series_are_shared_with_the_next_snapshot():
    models = {
        name: SimulatedMiniserver.generate(20, seed=seed)
        for name, seed in (("home", 21), ("office", 22))
    }
    owner = make_owner(list(models))
    for name, model in models.items():
        start_streaming(owner, name, model)
    renderer = Renderer()
    first = owner.snapshot()
    renderer.render(first)
    published = family_series(family(first, "loxone_control_value"))

    feed(owner, tables("home", models["home"].step(30)))
    second = owner.snapshot()
    home_before, office_before = family(first, "loxone_control_value").series.parts
    home_after, office_after = family(second, "loxone_control_value").series.parts
    assert office_after is office_before  # nothing came from the office: the very same part
    assert home_after is not home_before
    assert home_after.values != home_before.values
    info_before = family(first, "loxone_control_info").series.parts
    info_after = family(second, "loxone_control_info").series.parts
    assert all(map(operator.is_, info_after, info_before))  # info changes with a structure only
    # What was published stays as it was; a renderer that skips the shared parts writes what
    # a new one writes.
    assert family_series(family(first, "loxone_control_value")) == published
    assert renderer.render(second) == Renderer().render(second)

    # A new structure for the office: its info and value parts are new.
    feed(owner, [structure_ready("office", SimulatedMiniserver.generate(25, seed=23))])
    third = owner.snapshot()
    assert family(third, "loxone_control_info").series.parts[1] is not info_after[1]
    assert family(third, "loxone_control_info").series.parts[0] is info_after[0]
    assert renderer.render(third) == Renderer().render(third)


def test_label_sets_are_unique_on_a_real_structure(shared_fixture):
    document = json.loads(shared_fixture("smarteon-2025.LoxAPP3.json").read_text("utf-8"))
    models = {
        "home": SimulatedMiniserver.from_document(document, seed=3),
        "office": SimulatedMiniserver.from_document(document, seed=4),
    }
    owner = make_owner(list(models), include_text=True)
    for name, model in models.items():
        owner.apply(MiniserverIdentified(name, model.serial, "15.3.1"), 0.0)
        start_streaming(owner, name, model)
        feed(owner, tables(name, model.step(500)))
    parsed_series(render(owner.snapshot()))  # fails on a repeated series
    assert rendered_family(owner, "loxone_control_value") == (
        expected_control_values("home", models["home"])
        | expected_control_values("office", models["office"])
    )
    assert rendered_family(owner, "loxone_global_value") == (
        expected_global_values("home", models["home"])
        | expected_global_values("office", models["office"])
    )
    info = without_label(rendered_family(owner, "loxone_control_info"), "unit", "total_unit")
    assert info == expected_info(document, "home") | expected_info(document, "office")
