"""Independent, widely used Loxone clients against the simulator (protocol doc 9c).

Loxone's own lxcommunicator (npm) and loxwebsocket (PyPI, the library under PyLoxone) each log in,
download the structure and receive state tables. They are installed on first use into
``tests/.interop-cache`` (Node.js and npm needed for the first; a virtual environment is made for
the second, so asyncio and aiohttp stay out of this project's environment).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from conftest import strict_mode

from loxone_trio_exporter.simulator import SimulatorOptions, serve_simulator

HERE = Path(__file__).parent
CACHE = HERE / ".interop-cache"
LXCOMMUNICATOR = "lxcommunicator@1.1.1"
LOXWEBSOCKET = "loxwebsocket==0.6.0"


def unavailable(reason: str) -> None:
    if strict_mode():
        pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
    pytest.skip(reason)


def install(command: list[str], what: str) -> None:
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        unavailable(f"cannot install {what}: {exc}")


@pytest.fixture(scope="session")
def lxcommunicator_modules() -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        unavailable("node and npm are needed to run lxcommunicator")
    prefix = CACHE / "npm"
    modules = prefix / "node_modules"
    if not (modules / "lxcommunicator").is_dir():
        install(
            [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", LXCOMMUNICATOR],
            LXCOMMUNICATOR,
        )
    return modules


@pytest.fixture(scope="session")
def loxwebsocket_python() -> Path:
    venv = CACHE / "loxwebsocket-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        install([sys.executable, "-m", "venv", str(venv)], "a virtual environment")
    probe = subprocess.run([python, "-c", "import loxwebsocket"], capture_output=True, check=False)
    if probe.returncode != 0:
        install([str(python), "-m", "pip", "install", "-q", LOXWEBSOCKET], LOXWEBSOCKET)
    return python


async def run_probe(command: list[str]) -> dict:
    with trio.fail_after(60):
        result = await trio.run_process(
            command, capture_stdout=True, capture_stderr=True, check=False
        )
    lines = result.stdout.decode().strip().splitlines()
    assert lines, result.stderr.decode()[-2000:]
    return json.loads(lines[-1])


async def test_lxcommunicator_logs_in_and_receives_every_table(nursery, lxcommunicator_modules):
    options = SimulatorOptions(port=0, controls=30, rate=100.0, seed=11)
    handle = await nursery.start(serve_simulator, options)
    server = handle.servers[0]
    probe = str(HERE / "interop" / "lxcommunicator_probe.js")
    result = await run_probe(
        ["node", probe, str(lxcommunicator_modules), str(server.port), "demo", "demo"]
    )
    assert result["error"] is None, result
    assert result["version"] == server.model.last_modified
    assert result["controls"] == len(server.model.document["controls"])
    assert result["enableCode"] == "200"
    assert result["tokenRights"]
    assert {"2", "3", "4", "7"} <= set(result["events"])
    assert server.stats()["logins_ok"] == 1


async def test_loxwebsocket_logs_in_and_receives_tables(nursery, loxwebsocket_python):
    options = SimulatorOptions(port=0, controls=30, rate=100.0, seed=12)
    handle = await nursery.start(serve_simulator, options)
    probe = str(HERE / "interop" / "loxwebsocket_probe.py")
    result = await run_probe(
        [str(loxwebsocket_python), probe, str(handle.ports[0]), "demo", "demo"]
    )
    assert result["state"] == "CONNECTED"
    assert result["tables"].get("2", 0) > 1  # the full table, then batched changes
