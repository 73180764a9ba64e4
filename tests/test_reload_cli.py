"""SIGHUP on a real ``loxone-trio-exporter run exporter.toml`` process: reload, keep running."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import trio
from exporter_harness import (
    miniserver,
    parse_unique,
    poll,
    poll_async,
    select,
    start_simulator,
    value_of,
    write_config,
)
from http_client import http_request

from loxone_trio_exporter.simulator import User

COMMAND = [sys.executable, "-m", "loxone_trio_exporter"]
URL = re.compile(r"http://127\.0\.0\.1:(\d+)")
SECRETS = ("s3cret-Home-Pass", "s3cret-Office-Pass")


class Output:
    """Everything a process writes to one pipe, read as it comes (the pipe never fills up)."""

    def __init__(self) -> None:
        self.data = bytearray()

    async def pump(self, stream: trio.abc.ReceiveStream) -> None:
        while chunk := await stream.receive_some(65536):
            self.data += chunk

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def test_sighup_reloads_the_config_and_the_process_keeps_running(tmp_path: Path) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOXONE_")},
        "XDG_STATE_HOME": str(tmp_path),
    }
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            home_sim = await start_simulator(nursery, users=(User("reload", SECRETS[0]),))
            office_sim = await start_simulator(nursery, users=(User("reload", SECRETS[1]),))
            home = miniserver(home_sim, "home", user="reload", password=SECRETS[0])
            office = miniserver(office_sim, "office", user="reload", password=SECRETS[1])
            config_file = write_config(tmp_path / "exporter.toml", tmp_path / "state", [home])
            process = await trio.lowlevel.open_process(
                [*COMMAND, "run", str(config_file)], env=env, stderr=subprocess.PIPE
            )
            assert process.stderr is not None
            stderr = Output()
            nursery.start_soon(stderr.pump, process.stderr)
            await poll(lambda: URL.search(stderr.text) is not None)
            match = URL.search(stderr.text)
            assert match is not None
            port = int(match.group(1))

            async def samples() -> dict:  # type: ignore[type-arg]
                return parse_unique((await http_request(port, "/metrics")).body.decode())

            async def values_of(name: str) -> bool:
                return bool(select(await samples(), "loxone_control_value", miniserver=name))

            await poll_async(lambda: values_of("home"))
            logins = home_sim.accounts.logins_ok

            # A new Miniserver, and JSON log lines from now on.
            write_config(
                config_file, tmp_path / "state", [home, office], tables={"log": {"format": "json"}}
            )
            process.send_signal(signal.SIGHUP)
            await poll_async(lambda: values_of("office"))
            assert process.returncode is None  # SIGHUP did not stop it
            assert home_sim.accounts.logins_ok == logins  # home kept its session
            await poll(lambda: '"config reloaded from ' in stderr.text)
            reloaded = next(
                json.loads(line)
                for line in stderr.text.splitlines()
                if '"config reloaded from ' in line
            )
            assert reloaded["message"].endswith("added office; 1 unchanged; [log] applied")

            # An invalid config: the running one stays, the gauge says so.
            config_file.write_text(
                config_file.read_text("utf-8").replace(f"port = {office_sim.port}", "port = 0"),
                "utf-8",
            )
            process.send_signal(signal.SIGHUP)

            async def reload_failed() -> bool:
                current = await samples()
                return value_of(current, "loxone_exporter_config_last_reload_successful") == 0

            await poll_async(reload_failed)
            current = await samples()
            assert value_of(current, "loxone_up", miniserver="home") == 1
            assert value_of(current, "loxone_up", miniserver="office") == 1
            assert "miniserver[1].port" in stderr.text

            process.send_signal(signal.SIGTERM)
            code = await process.wait()
            nursery.cancel_scope.cancel()
    assert code == 0
    assert "Traceback" not in stderr.text
    for secret in SECRETS:
        assert secret not in stderr.text
