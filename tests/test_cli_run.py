"""The exporter as users start it: a real process, real signals, real exit codes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from exporter_harness import parse_unique, select, start_simulator, value_of
from http_client import http_request

COMMAND = [sys.executable, "-m", "loxone_trio_exporter"]
URL = re.compile(rb"http://127\.0\.0\.1:(\d+)")


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.mark.parametrize(
    ("toml", "path", "words"),
    [
        (
            '[[miniserver]]\nname = "a"\nusername = "u"\npassword = "p"\n',
            "miniserver[0].host",
            "required",
        ),
        (
            '[[miniserver]]\nname = "a"\nhost = "h"\nusername = "u"\npassword = "p"\n'
            '[[miniserver]]\nname = "a"\nhost = "k"\nusername = "u"\npassword = "p"\n',
            "miniserver[1].name",
            "used twice",
        ),
        (
            '[[miniserver]]\nname = "a"\nhost = "h"\nport = 70000\nusername = "u"\n'
            'password = "p"\n',
            "miniserver[0].port",
            "65535",
        ),
        (
            '[web]\nlisten = ["127.0.0.1:9504"]\nlisen = 1\n[[miniserver]]\nname = "a"\n'
            'host = "h"\nusername = "u"\npassword = "p"\n',
            "web.lisen",
            "unknown",
        ),
    ],
    ids=["missing-host", "duplicate-name", "bad-port", "unknown-key"],
)
def test_config_errors_exit_2_naming_the_path(
    tmp_path: Path, toml: str, path: str, words: str
) -> None:
    config = tmp_path / "exporter.toml"
    config.write_text(toml, encoding="utf-8")
    for args in (["run", str(config)], [str(config)], ["check", str(config)]):
        result = run_cli(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert path in result.stderr
        assert words in result.stderr.lower()
        assert "Traceback" not in result.stderr
        assert '"p"' not in result.stderr


def test_run_without_file_or_environment_says_what_to_set(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LOXONE_")}
    result = subprocess.run(
        [*COMMAND, "run"], capture_output=True, text=True, timeout=60, check=False, env=env
    )
    assert result.returncode == 2
    assert "LOXONE_HOST" in result.stderr


def test_a_taken_listen_port_is_exit_1_with_a_hint(tmp_path: Path) -> None:
    import socket  # noqa: PLC0415

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli(
            "run",
            env={
                "LOXONE_HOST": "127.0.0.1",
                "LOXONE_PORT": "1",
                "LOXONE_USERNAME": "demo",
                "LOXONE_PASSWORD": "demo",
                "LOXONE_LISTEN": f"127.0.0.1:{port}",
                "XDG_STATE_HOME": str(tmp_path),
            },
        )
    assert result.returncode == 1, result.stderr
    assert f"127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


async def read_until(
    stream: trio.abc.ReceiveStream, pattern: re.Pattern[bytes]
) -> tuple[re.Match[bytes], bytes]:
    seen = b""
    while True:
        chunk = await stream.receive_some(4096)
        if not chunk:
            raise AssertionError(f"output ended before {pattern.pattern!r}: {seen.decode()}")
        seen += chunk
        match = pattern.search(seen)
        if match:
            return match, seen


async def test_environment_only_run_then_sigterm_with_a_keep_alive_scraper(
    tmp_path: Path,
) -> None:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LOXONE_")},
        "LOXONE_NAME": "envhome",
        "LOXONE_HOST": "127.0.0.1",
        "LOXONE_USERNAME": "demo",
        "LOXONE_PASSWORD": "demo",
        "LOXONE_LISTEN": "127.0.0.1:0",
        "XDG_STATE_HOME": str(tmp_path),
    }
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, rate=50.0)
            env["LOXONE_PORT"] = str(server.port)
            process = await trio.lowlevel.open_process(
                [*COMMAND, "run"], env=env, stderr=subprocess.PIPE
            )
            assert process.stderr is not None
            match, _ = await read_until(process.stderr, URL)
            port = int(match.group(1))
            samples = {}
            while not select(samples, "loxone_control_value", miniserver="envhome"):
                await trio.sleep(0.05)
                samples = parse_unique((await http_request(port, "/metrics")).body.decode())
            assert value_of(samples, "loxone_up", miniserver="envhome") == 1
            # A scraper that keeps its connection open, as Prometheus does.
            keep_alive = await trio.open_tcp_stream("127.0.0.1", port)
            await keep_alive.send_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            assert b"200" in await keep_alive.receive_some(65536)
            started = trio.current_time()
            process.send_signal(signal.SIGTERM)
            code = await process.wait()
            took = trio.current_time() - started
            await keep_alive.aclose()
            nursery.cancel_scope.cancel()
    assert code == 0
    print(f"SIGTERM -> exit with a keep-alive scraper connected: {took:.3f} s")
    assert took < 5.0  # the budget (1 s) is measured by the benchmarks; this catches a hang


async def test_demo_shows_live_metrics_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_STATE_HOME": str(tmp_path)}
    with trio.fail_after(60):
        started = trio.current_time()
        process = await trio.lowlevel.open_process(
            [*COMMAND, "demo", "--listen", "127.0.0.1:0"], env=env, stdout=subprocess.PIPE
        )
        assert process.stdout is not None
        match, printed = await read_until(
            process.stdout, re.compile(rb"Metrics: +http://127\.0\.0\.1:(\d+)/metrics")
        )
        port = int(match.group(1))
        samples = {}
        while not select(samples, "loxone_control_value", miniserver="demo"):
            samples = parse_unique((await http_request(port, "/metrics")).body.decode())
            await trio.sleep(0.05)
        first_metrics = trio.current_time() - started
        before = value_of(samples, "loxone_exporter_events_total", miniserver="demo", table="value")
        while True:  # live: the values keep changing
            await trio.sleep(0.2)
            samples = parse_unique((await http_request(port, "/metrics")).body.decode())
            now = value_of(
                samples, "loxone_exporter_events_total", miniserver="demo", table="value"
            )
            if now > before:
                break
        process.send_signal(signal.SIGINT)
        code = await process.wait()
    assert code == 0
    assert b"Ctrl+C" in printed
    print(f"demo: process start -> first loxone_control_value on /metrics: {first_metrics:.2f} s")


def test_check_prints_the_effective_config_without_the_password(tmp_path: Path) -> None:
    config = tmp_path / "exporter.toml"
    config.write_text(
        '[[miniserver]]\nname = "a"\nhost = "h"\nusername = "u"\npassword = "pw-Zq81x"\n',
        encoding="utf-8",
    )
    config.chmod(0o600)
    result = run_cli("check", str(config))
    assert result.returncode == 0, result.stderr
    assert 'host = "h"' in result.stdout
    assert "pw-Zq81x" not in result.stdout + result.stderr
