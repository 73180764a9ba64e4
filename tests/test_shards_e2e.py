"""Shards end to end (issue 19, item 3): N exporters on one config against simulated Miniservers.

Every instance is the real exporter (``run_exporter``) in this trio run, each with its own token
store (as each pod of a StatefulSet has its own volume), beside one more instance with one
shard (the reference: what a single exporter exports). The simulators count who streams from
them, so "exactly one shard streams each Miniserver" is seen from the Miniserver's side too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import partial
from pathlib import Path

import attrs
import pytest
import trio
from exporter_harness import (
    Exporter,
    SeriesKey,
    poll,
    poll_async,
    start_exporter_from_file,
    write_config,
)
from http_client import http_request
from owner_feed import promtool_check

from loxone_trio_exporter.config import Config, MiniserverConfig, ShardConfig, WebConfig
from loxone_trio_exporter.sharding import assign, shard_of
from loxone_trio_exporter.simulator import SimulatedServer, SimulatorOptions, serve_simulator
from loxone_trio_exporter.supervisor import run_exporter

SHARD_INFO = "loxone_exporter_shard_info"
NAMES = ("home", "office", "garage", "barn", "cellar", "shop", "cabin")
#: Values of these depend on the wall clock of each session (when its last event came, when its
#: token was issued); their series are compared, their values not.
CLOCK_FAMILIES = frozenset(
    {
        "loxone_exporter_last_event_timestamp_seconds",
        "loxone_exporter_token_expiry_timestamp_seconds",
    }
)


async def start_simulators(nursery: trio.Nursery, count: int) -> tuple[SimulatedServer, ...]:
    options = SimulatorOptions(port=0, controls=25, rate=0.0, seed=11, count=count)
    handle = await nursery.start(serve_simulator, options)
    servers: tuple[SimulatedServer, ...] = handle.servers
    return servers


def shared_config(servers: tuple[SimulatedServer, ...], names: tuple[str, ...]) -> Config:
    """The one config every instance gets (apart from its index and token store)."""
    return Config(
        web=WebConfig(listen=("127.0.0.1:0",)),
        miniservers=tuple(
            MiniserverConfig(
                name=name,
                host="127.0.0.1",
                port=server.port,
                username="demo",
                password="demo",
                tls="off",
            )
            for name, server in zip(names, servers, strict=True)
        ),
    )


async def start_instance(
    nursery: trio.Nursery, config: Config, state_dir: Path, *, index: int, count: int
) -> Exporter:
    await trio.Path(state_dir).mkdir()
    config = attrs.evolve(
        config, shard=ShardConfig(count=count, index=index), state_dir=str(state_dir)
    )
    shutdown = trio.Event()
    handle = await nursery.start(partial(run_exporter, config, shutdown))
    port = int(handle.urls[0].rstrip("/").rsplit(":", 1)[1])
    return Exporter(handle, port, shutdown)


def per_miniserver(samples: Mapping[SeriesKey, float]) -> dict[SeriesKey, float]:
    """The series about one Miniserver (they carry its ``miniserver`` label).

    The rest describe the process that exports them (``loxone_exporter_build_info``,
    ``_shard_info``, ``_render_duration_seconds``, the reload gauges, ``process_*``): every
    instance has its own, so they cannot add up to one instance's.
    """
    return {key: value for key, value in samples.items() if "miniserver" in dict(key[1])}


def comparable(samples: Mapping[SeriesKey, float]) -> dict[SeriesKey, float | None]:
    return {key: None if key[0] in CLOCK_FAMILIES else v for key, v in samples.items()}


@pytest.mark.parametrize("count", [1, 2, 3, 5])
async def test_shards_split_the_miniservers_and_add_up_to_one_exporter(tmp_path, count):
    async with trio.open_nursery() as nursery:
        servers = await start_simulators(nursery, len(NAMES))
        config = shared_config(servers, NAMES)
        reference = await start_instance(nursery, config, tmp_path / "one", index=0, count=1)
        shards = [
            await start_instance(nursery, config, tmp_path / f"shard-{i}", index=i, count=count)
            for i in range(count)
        ]
        expected = assign(NAMES, count)
        await reference.wait_until_streaming(*NAMES)
        for shard, names in zip(shards, expected, strict=True):
            assert shard.handle.owner.miniserver_names == names
            await shard.wait_until_streaming(*names)
        # From the Miniservers' side: two sessions each, the reference's and one shard's.
        await poll(lambda: all(len(server.streaming_clients) == 2 for server in servers))

        async def all_tables_applied() -> bool:
            # "Streaming" comes with the enable reply; the full tables are applied just after.
            merged: dict[SeriesKey, float] = {}
            for shard in shards:
                merged |= per_miniserver(await shard.samples())
            return comparable(merged) == comparable(per_miniserver(await reference.samples()))

        await poll_async(all_tables_applied)

        whole = per_miniserver(await reference.samples())
        assert {dict(labels)["miniserver"] for _, labels in whole} == set(NAMES)
        union: dict[SeriesKey, float] = {}
        for index, shard in enumerate(shards):
            samples = await shard.samples()
            assert samples[("loxone_exporter_shard_info", frozenset({
                ("index", str(index)), ("count", str(count))
            }))] == 1.0  # fmt: skip
            own = per_miniserver(samples)
            assert {dict(labels)["miniserver"] for _, labels in own} == set(expected[index])
            assert not own.keys() & union.keys()  # no series from two instances
            union |= own
            ready = await http_request(shard.port, "/-/ready")
            assert ready.status == 200
            page = (await http_request(shard.port, "/")).body.decode()
            held = len(expected[index])
            assert f"Shard {index} of {count} (indexes 0 to {count - 1})" in page
            assert re.search(rf"this instance runs {held} Miniservers?\.", page)
        assert comparable(union) == comparable(whole)
        for exporter in (reference, *shards):
            exporter.shutdown.set()
        nursery.cancel_scope.cancel()


async def test_a_shard_without_miniservers_is_ready_and_healthy(tmp_path):
    async with trio.open_nursery() as nursery:
        servers = await start_simulators(nursery, 1)
        config = shared_config(servers, ("home",))
        empty = next(index for index in range(3) if index != shard_of("home", 3))
        exporter = await start_instance(nursery, config, tmp_path / "s", index=empty, count=3)
        assert exporter.handle.owner.miniserver_names == ()
        ready = await http_request(exporter.port, "/-/ready")
        assert (ready.status, ready.body) == (200, b"Ready\n")
        health = await http_request(exporter.port, "/healthz")
        assert health.status == 200
        assert health.json() == {"status": "healthy", "miniservers": {}}
        page = (await http_request(exporter.port, "/")).body.decode()
        assert f"Shard {empty} of 3 (indexes 0 to 2): this instance runs 0 Miniservers." in page
        samples = await exporter.samples()
        assert per_miniserver(samples) == {}
        info = {key: v for key, v in samples.items() if key[0] == "loxone_exporter_shard_info"}
        assert info == {
            ("loxone_exporter_shard_info", frozenset({("index", str(empty)), ("count", "3")})): 1
        }
        assert servers[0].streaming_clients == set()
        exporter.shutdown.set()
        nursery.cancel_scope.cancel()


async def test_a_reload_with_a_new_count_moves_the_miniservers(tmp_path):
    async with trio.open_nursery() as nursery:
        servers = await start_simulators(nursery, len(NAMES))
        config = shared_config(servers, NAMES)
        by_name = dict(zip(NAMES, servers, strict=True))
        state_dir = tmp_path / "state"
        config_file = tmp_path / "exporter.toml"
        index = 0
        two, three = assign(NAMES, 2)[index], assign(NAMES, 3)[index]
        # Highest random weight: from 2 to 3 shards, index 0 only gives Miniservers away (to the
        # new index 2), and takes them back when the count goes back to 2.
        given_away = tuple(name for name in two if name not in three)
        assert given_away
        assert set(three) < set(two)

        def write(count: int) -> None:
            shard = {"shard": {"count": count, "index": index}}
            write_config(config_file, state_dir, config.miniservers, tables=shard)

        async def reload(count: int) -> str:
            write(count)
            response = await http_request(exporter.port, "/-/reload", method="POST")
            assert response.status == 200, response.body
            return response.body.decode()

        async def shard_info() -> set[SeriesKey]:
            return {key for key in await exporter.samples() if key[0] == SHARD_INFO}

        write(2)
        exporter = await start_exporter_from_file(nursery, config_file)
        assert exporter.handle.owner.miniserver_names == two
        await exporter.wait_until_streaming(*two)

        message = await reload(3)
        assert f"removed {', '.join(given_away)}; {len(three)} unchanged" in message
        assert exporter.handle.owner.miniserver_names == three
        await poll(lambda: not any(by_name[name].streaming_clients for name in given_away))
        assert await shard_info() == {(SHARD_INFO, frozenset({("index", "0"), ("count", "3")}))}
        page = (await http_request(exporter.port, "/")).body.decode()
        assert f"Shard 0 of 3 (indexes 0 to 2): this instance runs {len(three)} " in page

        message = await reload(2)
        assert f"added {', '.join(given_away)}; {len(three)} unchanged" in message
        assert exporter.handle.owner.miniserver_names == two
        await exporter.wait_until_streaming(*two)
        assert await shard_info() == {(SHARD_INFO, frozenset({("index", "0"), ("count", "2")}))}

        # An index the count does not have: nothing changes, the answer says why.
        write(0)
        refused = await http_request(exporter.port, "/-/reload", method="POST")
        assert refused.status == 500
        assert "shard.count: expected a shard count >= 1, got 0" in refused.body.decode()
        assert exporter.handle.owner.miniserver_names == two
        assert await shard_info() == {(SHARD_INFO, frozenset({("index", "0"), ("count", "2")}))}
        body = (await exporter.scrape()).encode()
        await trio.to_thread.run_sync(promtool_check, body)  # shard_info among the rest
        exporter.shutdown.set()
        nursery.cancel_scope.cancel()
