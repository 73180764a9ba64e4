"""``[shard]``: the rendezvous assignment, the config section, ``LOXONE_SHARD``, ``index = "auto"``
and ``check --shards`` (issue 19, item 1)."""

from __future__ import annotations

import hashlib
import tomllib
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loxone_trio_exporter.cli import main
from loxone_trio_exporter.config import (
    ShardConfig,
    config_from_dict,
    load_config,
    own_shard,
    render_config_toml,
)
from loxone_trio_exporter.errors import ConfigError
from loxone_trio_exporter.sharding import assign, shard_of, shard_weight

SECRET = "hunter2-Geheim-9x"
NAMES = ("home", "office", "garage", "barn", "cellar", "shop", "cabin")

names_st = st.text(min_size=1, max_size=30)


def document(count: int | None = None, index: object = None, **tables: Any) -> dict[str, Any]:
    shard = {key: value for key, value in (("count", count), ("index", index)) if value is not None}
    miniservers = [
        {"name": name, "host": "192.168.1.77", "username": "prometheus", "password": SECRET}
        for name in NAMES
    ]
    return {**({"shard": shard} if shard else {}), "miniserver": miniservers, **tables}


def errors_of(doc: dict[str, Any], environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(doc, environ)
    assert SECRET not in str(caught.value)
    return str(caught.value).splitlines()


# --- the assignment -------------------------------------------------------------------------------


def test_the_weight_is_blake2b_of_index_and_name():
    expected = int.from_bytes(hashlib.blake2b(b"2/home", digest_size=8).digest(), "big")
    assert shard_weight("home", 2) == expected


def test_the_assignment_is_pinned():
    # Every instance (any machine, any Python, any run) must compute the same: a change here
    # would move Miniservers between running shards on an upgrade.
    assert assign(NAMES, 3) == (
        ("home", "office", "cabin"),
        ("garage", "barn", "cellar"),
        ("shop",),
    )
    # One Miniserver's shard depends on its name alone, not on the others or their order.
    assert assign(reversed(NAMES), 3) == tuple(shard[::-1] for shard in assign(NAMES, 3))


@given(st.lists(names_st, unique=True), st.integers(min_value=1, max_value=12))
def test_every_name_goes_to_exactly_one_shard(names, count):
    shards = assign(names, count)
    assert len(shards) == count
    assert sorted(name for shard in shards for name in shard) == sorted(names)
    for index, shard in enumerate(shards):
        assert all(shard_of(name, count) == index for name in shard)


@given(names_st)
def test_one_shard_runs_everything(name):
    assert shard_of(name, 1) == 0


@given(st.lists(names_st, unique=True), st.integers(min_value=1, max_value=12))
def test_adding_a_shard_moves_only_to_the_new_one(names, count):
    # Highest random weight: a Miniserver moves only when the new index outweighs its old one.
    for name in names:
        after = shard_of(name, count + 1)
        assert after in (shard_of(name, count), count)


@settings(max_examples=30, deadline=None)
@given(st.lists(names_st, min_size=200, max_size=400, unique=True))
def test_three_to_four_shards_moves_about_a_quarter(names):
    moved = sum(shard_of(name, 3) != shard_of(name, 4) for name in names)
    # Expected: 1/4 of them (binomial). 0.25 n + 6 standard deviations: a blake2b hash that
    # behaves like one never fails this; a hash that moves everything (``hash(name) % count``
    # moves 3/4) always does.
    n = len(names)
    assert moved <= 0.25 * n + 6 * (n * 0.25 * 0.75) ** 0.5


def test_many_names_spread_evenly_and_move_a_quarter():
    names = [f"miniserver-{number:04d}" for number in range(2000)]
    sizes = Counter(shard_of(name, 3) for name in names)
    assert all(600 <= sizes[index] <= 733 for index in range(3)), sizes
    moved = sum(shard_of(name, 3) != shard_of(name, 4) for name in names)
    assert 0.21 * 2000 <= moved <= 0.29 * 2000


def test_shard_of_refuses_a_count_below_one():
    with pytest.raises(ValueError, match="at least 1"):
        shard_of("home", 0)


# --- the config -----------------------------------------------------------------------------------


def test_one_shard_by_default_runs_every_miniserver():
    config = config_from_dict(document(), {})
    assert config.shard == ShardConfig(count=1, index=0)
    assert own_shard(config) == config


def test_the_shards_of_one_config_split_its_miniservers():
    owned = []
    for index in range(3):
        config = own_shard(config_from_dict(document(count=3, index=index), {}))
        assert config.shard == ShardConfig(count=3, index=index)
        owned.append(tuple(ms.name for ms in config.miniservers))
    assert tuple(owned) == assign(NAMES, 3)


def test_load_config_holds_the_own_shard_and_whole_keeps_all(tmp_path):
    path = tmp_path / "exporter.toml"
    path.write_text(
        '[shard]\ncount = 3\nindex = "auto"\n'
        + "".join(
            f'[[miniserver]]\nname = "{name}"\nhost = "h"\nusername = "u"\npassword = "p"\n'
            for name in NAMES
        ),
        encoding="utf-8",
    )
    environ = {"HOSTNAME": "loxone-trio-exporter-1"}
    own = load_config(path, environ)
    assert [ms.name for ms in own.miniservers] == list(assign(NAMES, 3)[1])
    assert [ms.name for ms in load_config(path, environ, whole=True).miniservers] == list(NAMES)


def test_index_auto_takes_the_pod_ordinal_from_hostname():
    config = config_from_dict(document(count=5, index="auto"), {"HOSTNAME": "lox-exp-2-4"})
    assert config.shard == ShardConfig(count=5, index=4)


@pytest.mark.parametrize(
    ("hostname", "shown"),
    [(None, "is not set"), ("", "is not set"), ("web", 'is "web"'), ("pod-3x", 'is "pod-3x"')],
)
def test_index_auto_without_an_ordinal_says_what_to_do(hostname, shown):
    environ = {} if hostname is None else {"HOSTNAME": hostname}
    (line,) = errors_of(document(count=3, index="auto"), environ)
    assert line.startswith('shard.index: "auto" takes the index from the number at the end of')
    assert f"HOSTNAME {shown}" in line
    assert "LOXONE_SHARD=INDEX/COUNT" in line


def test_a_pod_beyond_the_count_is_told_to_match_replicas_and_count():
    (line,) = errors_of(document(count=3, index="auto"), {"HOSTNAME": "exporter-3"})
    assert line == (
        'shard.index: HOSTNAME "exporter-3" gives index 3, but the count is 3: run as many '
        "StatefulSet replicas as [shard] count says (pods NAME-0 to NAME-2)"
    )


@pytest.mark.parametrize(
    ("shard", "expected"),
    [
        ({"count": 0}, ["shard.count: expected a shard count >= 1, got 0"]),
        (
            {"count": 2, "index": -1},
            ['shard.index: expected a shard index >= 0 (or "auto"), got -1'],
        ),
        (
            {"count": 2, "index": 2},
            ["shard.index: expected an index below the count, 2 (the shards are 0 to 1)"],
        ),
        ({"count": 2, "index": "first"}, ['shard.index: expected an int or "auto", got "first"']),
        ({"count": "3"}, ['shard.count: expected int, got "3"']),
        ({"count": 2, "index": True}, ["shard.index: expected int, got true"]),
        ({"count": 2, "shards": 2}, ["shard.shards: unknown key"]),
    ],
)
def test_bad_shard_tables_name_their_path(shard, expected):
    doc = document()
    doc["shard"] = shard
    assert errors_of(doc, {}) == expected


def test_loxone_shard_replaces_the_file_index_and_count():
    config = config_from_dict(document(count=7, index=6), {"LOXONE_SHARD": " 1/2 "})
    assert config.shard == ShardConfig(count=2, index=1)
    auto = config_from_dict(document(), {"LOXONE_SHARD": "auto/4", "HOSTNAME": "x-3"})
    assert auto.shard == ShardConfig(count=4, index=3)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "1",
            'LOXONE_SHARD: expected INDEX/COUNT such as "0/3" (or "auto/3": the index from the '
            'StatefulSet pod name in HOSTNAME), got "1"',
        ),
        ("3/3", "LOXONE_SHARD: expected an index below the count, 3 (the shards are 0 to 2)"),
        ("0/0", "LOXONE_SHARD: expected a shard count >= 1, got 0"),
    ],
)
def test_a_bad_loxone_shard_is_reported_under_its_name(value, expected):
    assert errors_of(document(), {"LOXONE_SHARD": value}) == [expected]


def test_render_writes_the_shard_and_round_trips():
    config = config_from_dict(document(count=3, index="auto"), {"HOSTNAME": "pod-2"})
    rendered = tomllib.loads(render_config_toml(config))
    assert rendered["shard"] == {"count": 3, "index": 2}
    for table in rendered["miniserver"]:
        table["password"] = SECRET
    assert config_from_dict(rendered, {}) == config


# --- check --shards -------------------------------------------------------------------------------


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exporter.toml"
    body = "".join(
        f'[[miniserver]]\nname = "{name}"\nhost = "h"\nusername = "u"\npassword = "{SECRET}"\n'
        for name in NAMES
    )
    path.write_text(text + body, encoding="utf-8")
    path.chmod(0o600)
    return path


def test_check_shards_prints_every_index(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HOSTNAME", "loxone-trio-exporter-2")
    monkeypatch.delenv("LOXONE_SHARD", raising=False)
    path = write_config(tmp_path, '[shard]\ncount = 3\nindex = "auto"\n')
    assert main(["check", "--shards", str(path)]) == 0
    out = capsys.readouterr().out
    shards = assign(NAMES, 3)
    expected = ["# 7 Miniservers in 3 shard(s); this instance is index 2"]
    for index, names in enumerate(shards):
        count = f"{len(names)} Miniserver" + ("" if len(names) == 1 else "s")
        expected += [f"shard {index}: {count}", *(f"  {name}" for name in names)]
    assert out.splitlines() == expected
    assert SECRET not in out


def test_check_shard_count_shows_what_would_move(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOXONE_SHARD", raising=False)
    path = write_config(tmp_path, "[shard]\ncount = 3\nindex = 0\n")
    assert main(["check", str(path), "--shard-count", "4"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    moved = sum(shard_of(name, 3) != shard_of(name, 4) for name in NAMES)
    assert moved == 1  # barn goes to the new shard 3
    assert first == "# 7 Miniservers in 4 shard(s); from the configured 3, 1 Miniserver would move"
    assert main(["check", str(path), "--shard-count", "0"]) == 2
    assert "--shard-count must be at least 1" in capsys.readouterr().err


def test_check_without_shards_prints_the_whole_config(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LOXONE_SHARD", raising=False)
    path = write_config(tmp_path, "[shard]\ncount = 3\nindex = 1\n")
    assert main(["check", str(path)]) == 0
    rendered = tomllib.loads(capsys.readouterr().out)
    assert [table["name"] for table in rendered["miniserver"]] == list(NAMES)
    assert rendered["shard"] == {"count": 3, "index": 1}


def test_check_with_a_bad_shard_exits_2_without_a_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("HOSTNAME", raising=False)
    monkeypatch.delenv("LOXONE_SHARD", raising=False)
    path = write_config(tmp_path, '[shard]\ncount = 3\nindex = "auto"\n')
    assert main(["check", "--shards", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is not a valid config" in err
    assert "shard.index" in err
    assert "Traceback" not in err
    assert SECRET not in err


def test_one_shard_renders_as_before():
    rendered = tomllib.loads(render_config_toml(config_from_dict(document(count=1), {})))
    assert "shard" not in rendered
