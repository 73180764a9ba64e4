"""Production hardening end to end: tokens across exporter restarts, killtoken on exit, and a
/metrics protected by a web config file, with the real exporter and the real simulator."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from pathlib import Path

import attrs
import bcrypt
import trio
from exporter_harness import miniserver, start_exporter, start_simulator
from http_client import http_request

COMMAND = [sys.executable, "-m", "loxone_trio_exporter"]


async def run_once(server, state_dir: Path, **settings) -> float:
    """Start an exporter, wait until it streams, stop it; returns how long the stop took."""
    async with trio.open_nursery() as nursery:
        config = attrs.evolve(miniserver(server), **settings)
        exporter = await start_exporter(nursery, state_dir, [config])
        await exporter.wait_until_streaming("home")
        started = trio.current_time()
        exporter.shutdown.set()
    return trio.current_time() - started


async def test_a_restarted_exporter_authenticates_with_its_stored_token(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            await run_once(server, tmp_path)
            await run_once(server, tmp_path)
            nursery.cancel_scope.cancel()
    assert server.accounts.logins_ok == 2
    assert len(list(server.accounts.tokens)) == 1  # authwithtoken the second time, no getjwt
    assert list((tmp_path / "tokens").iterdir())


async def test_kill_token_on_exit_revokes_it_within_the_stop_budget(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, rate=50.0)
            took = await run_once(server, tmp_path, kill_token_on_exit=True)
            nursery.cancel_scope.cancel()
    assert list(server.accounts.tokens) == []
    assert not list((tmp_path / "tokens").iterdir())
    print(f"stop with killtoken: {took:.3f} s")
    assert took < 1.5  # the 1 s budget is measured by the benchmarks; this catches a hang


def basic_auth(user: str, password: str) -> tuple[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return ("Authorization", f"Basic {token}")


async def test_a_web_config_file_protects_metrics_and_reload(tmp_path: Path) -> None:
    hashed = bcrypt.hashpw(b"scrape-secret", bcrypt.gensalt(rounds=4)).decode()
    web_config = tmp_path / "web-config.yml"
    web_config.write_text(f'basic_auth_users:\n  prometheus: "{hashed}"\n', encoding="utf-8")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server)], web_config_file=str(web_config)
            )
            await exporter.wait_until_streaming("home")
            anonymous = await http_request(exporter.port, "/metrics")
            wrong = await http_request(
                exporter.port, "/metrics", headers=[basic_auth("prometheus", "nope")]
            )
            right = await http_request(
                exporter.port, "/metrics", headers=[basic_auth("prometheus", "scrape-secret")]
            )
            reload = await http_request(exporter.port, "/-/reload", method="POST")
            nursery.cancel_scope.cancel()
    assert anonymous.status == wrong.status == reload.status == 401
    assert "basic" in anonymous.headers["www-authenticate"].lower()
    assert right.status == 200
    assert b"loxone_up" in right.body


def test_run_refuses_an_invalid_web_config_with_exit_2(tmp_path: Path) -> None:
    web_config = tmp_path / "web.yml"
    web_config.write_text("basic_auth_users: [not, a, mapping]\n", encoding="utf-8")
    config = tmp_path / "exporter.toml"
    config.write_text(
        f'state_dir = "{tmp_path}"\n[web]\nweb_config_file = "web.yml"\n'
        '[[miniserver]]\nname = "a"\nhost = "127.0.0.1"\nusername = "u"\npassword = "p"\n',
        encoding="utf-8",
    )
    config.chmod(0o644)  # and readable by others: check warns about that too
    for command in ("run", "check"):
        result = subprocess.run(
            [*COMMAND, command, str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "XDG_STATE_HOME": str(tmp_path)},
        )
        assert result.returncode == 2, result.stderr
        assert "basic_auth_users" in result.stderr
        assert "Traceback" not in result.stderr
    web_config.write_text("{}\n", encoding="utf-8")
    result = subprocess.run(
        [*COMMAND, "check", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "chmod 600" in result.stderr
