"""Shards as users start them: ``run`` in a real process with ``LOXONE_SHARD`` or a pod's
``HOSTNAME`` (issue 19, item 1)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from exporter_harness import parse_unique
from http_client import http_request

from loxone_trio_exporter.sharding import assign
from loxone_trio_exporter.simulator import SimulatorOptions, serve_simulator

COMMAND = [sys.executable, "-m", "loxone_trio_exporter"]
SECRET = "pw-Sh4rd-secret"
NAMES = ("home", "office", "garage", "barn")


def write_config(tmp_path: Path, shard: str, ports: tuple[int, ...] = (1, 1, 1, 1)) -> Path:
    body = "".join(
        f'[[miniserver]]\nname = "{name}"\nhost = "127.0.0.1"\nport = {port}\n'
        f'username = "demo"\npassword = "{SECRET}"\ntls = "off"\n'
        for name, port in zip(NAMES, ports, strict=True)
    )
    path = tmp_path / "exporter.toml"
    path.write_text(
        f'state_dir = "{tmp_path / "state"}"\n[web]\nlisten = ["127.0.0.1:0"]\n{shard}\n{body}',
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def environment(**variables: str) -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith("LOXONE_") and k != "HOSTNAME"}
    return {**keep, **variables}


@pytest.mark.parametrize(
    ("shard", "variables", "expected"),
    [
        (
            '[shard]\ncount = 3\nindex = "auto"',
            {"HOSTNAME": "loxone-trio-exporter-3"},
            'shard.index: HOSTNAME "loxone-trio-exporter-3" gives index 3, but the count is 3',
        ),
        (
            '[shard]\ncount = 3\nindex = "auto"',
            {"HOSTNAME": "laptop"},
            'shard.index: "auto" takes the index from the number at the end of HOSTNAME',
        ),
        ("", {"LOXONE_SHARD": "2of3"}, 'LOXONE_SHARD: expected INDEX/COUNT such as "0/3"'),
    ],
    ids=["pod-beyond-count", "no-ordinal", "bad-variable"],
)
def test_run_with_a_bad_shard_exits_2_saying_what_to_do(tmp_path, shard, variables, expected):
    config = write_config(tmp_path, shard)
    result = subprocess.run(
        [*COMMAND, "run", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment(**variables),
    )
    assert result.returncode == 2, result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stderr


async def test_run_as_a_pod_of_a_statefulset_runs_its_own_shard(tmp_path):
    url = re.compile(rb"http://127\.0\.0\.1:(\d+)")
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            options = SimulatorOptions(port=0, controls=10, rate=0.0, count=len(NAMES))
            simulators = await nursery.start(serve_simulator, options)
            ports = tuple(server.port for server in simulators.servers)
            config = write_config(tmp_path, '[shard]\ncount = 2\nindex = "auto"', ports)
            process = await trio.lowlevel.open_process(
                [*COMMAND, "run", str(config)],
                env=environment(HOSTNAME="loxone-trio-exporter-1"),
                stderr=subprocess.PIPE,
            )
            assert process.stderr is not None
            seen = b""
            while not url.search(seen):
                chunk = await process.stderr.receive_some(4096)
                assert chunk, seen.decode()
                seen += chunk
            own = assign(NAMES, 2)[1]
            line = f"shard 1 of 2: this instance runs {len(own)} Miniserver(s): {', '.join(own)}"
            assert line in seen.decode()
            port = int(url.search(seen).group(1))  # type: ignore[union-attr]
            samples = parse_unique((await http_request(port, "/metrics")).body.decode())
            up = {dict(labels)["miniserver"] for name, labels in samples if name == "loxone_up"}
            assert up == set(own)
            shard_info = ("loxone_exporter_shard_info", frozenset({("index", "1"), ("count", "2")}))
            assert samples[shard_info] == 1.0
            process.send_signal(signal.SIGTERM)
            assert await process.wait() == 0
            nursery.cancel_scope.cancel()
