"""The container's HEALTHCHECK (``python -m loxone_trio_exporter.healthcheck``) against a real
exporter started from a real config file: plain HTTP, basic auth, TLS, and TLS that demands a
client certificate. The check never prints a password, right or wrong."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import bcrypt
import pytest
import tomli_w
import trio
from exporter_harness import miniserver, start_exporter_from_file, start_simulator, write_config
from tls_material import issue, make_ca

from loxone_trio_exporter import healthcheck
from loxone_trio_exporter.config import CONTAINER_CONFIG_FILE

PASSWORD = "Health-s3cret-Passw0rd"
WRONG_PASSWORD = "Wrong-s3cret-Passw0rd"
HASH = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()


def web_config(tmp_path: Path, *, tls: bool = False, auth: bool = False, mtls: bool = False) -> str:
    lines = []
    if tls:
        certs = tmp_path / "certs"
        certs.mkdir()
        ca = make_ca(certs)
        issue(certs, "server", ca, ip_addresses=("127.0.0.1",))
        issue(certs, "client", ca, dns_names=("healthcheck.test",), client=True)
        lines += [
            "tls_server_config:",
            "  cert_file: certs/server.crt",
            "  key_file: certs/server.key",
        ]
        if mtls:
            lines += [
                "  client_auth_type: RequireAndVerifyClientCert",
                "  client_ca_file: certs/ca.crt",
            ]
    if auth:
        lines += ["basic_auth_users:", f"  prometheus: {HASH}"]
    (tmp_path / "web.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return "web.yml"


async def run_check(argv: list[str], environ: dict[str, str]) -> tuple[bool, str]:
    """The check in a worker thread: it blocks, and the exporter runs on this event loop."""
    return await trio.to_thread.run_sync(healthcheck.check, argv, environ)


def config_for(tmp_path: Path, server, web_file: str = "") -> Path:
    tables = {"web": {"web_config_file": web_file}} if web_file else None
    return write_config(
        tmp_path / "exporter.toml", tmp_path / "state", [miniserver(server)], tables=tables
    )


async def test_plain_http_healthy_while_serving_then_unhealthy(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            config = config_for(tmp_path, server)
            exporter = await start_exporter_from_file(nursery, config)
            # The port from the file itself: a copy of the config naming the port in use.
            fixed = tmp_path / "fixed.toml"
            document = {"web": {"listen": [f"0.0.0.0:{exporter.port}"]}}
            fixed.write_text(tomli_w.dumps(document), encoding="utf-8")
            healthy, line = await run_check([str(fixed)], {})
            assert healthy, line
            assert line == f"healthy: http://127.0.0.1:{exporter.port}/-/healthy answered 200"
            # The same through $LOXONE_CONFIG_FILE, the port from $LOXONE_LISTEN.
            environ = {
                "LOXONE_CONFIG_FILE": str(config),
                "LOXONE_LISTEN": f"127.0.0.1:{exporter.port}",
            }
            assert (await run_check([], environ))[0]
            nursery.cancel_scope.cancel()
    healthy, line = await run_check([str(fixed)], {})
    assert not healthy
    assert line.startswith(f"unhealthy: http://127.0.0.1:{exporter.port}/-/healthy: ")
    assert "ConnectionRefusedError" in line


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
async def test_basic_auth_with_credentials_from_the_environment(tmp_path: Path, tls: bool) -> None:
    password_file = tmp_path / "healthcheck-password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    wrong_file = tmp_path / "wrong-password"
    wrong_file.write_text(WRONG_PASSWORD, encoding="utf-8")
    scheme = "https" if tls else "http"
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            config = config_for(tmp_path, server, web_config(tmp_path, tls=tls, auth=True))
            exporter = await start_exporter_from_file(nursery, config)
            base = {"LOXONE_CONFIG_FILE": str(config), "LOXONE_LISTEN": f"0.0.0.0:{exporter.port}"}
            url = f"{scheme}://127.0.0.1:{exporter.port}/-/healthy"
            outcomes = {
                "none": await run_check([], base),
                "file": await run_check(
                    [],
                    base
                    | {
                        "LOXONE_HEALTHCHECK_USERNAME": "prometheus",
                        "LOXONE_HEALTHCHECK_PASSWORD_FILE": str(password_file),
                    },
                ),
                "variable": await run_check(
                    [],
                    base
                    | {
                        "LOXONE_HEALTHCHECK_USERNAME": "prometheus",
                        "LOXONE_HEALTHCHECK_PASSWORD": PASSWORD,
                    },
                ),
                "wrong": await run_check(
                    [],
                    base
                    | {
                        "LOXONE_HEALTHCHECK_USERNAME": "prometheus",
                        "LOXONE_HEALTHCHECK_PASSWORD_FILE": str(wrong_file),
                    },
                ),
            }
            nursery.cancel_scope.cancel()
    assert outcomes["none"] == (
        False,
        f"unhealthy: the web config {tmp_path / 'web.yml'} asks for basic auth: set "
        "LOXONE_HEALTHCHECK_USERNAME and LOXONE_HEALTHCHECK_PASSWORD_FILE",
    )
    assert outcomes["file"] == (True, f"healthy: {url} answered 200")
    assert outcomes["variable"] == (True, f"healthy: {url} answered 200")
    assert outcomes["wrong"] == (
        False,
        f"unhealthy: {url} answered 401 (wrong LOXONE_HEALTHCHECK_USERNAME or password?)",
    )
    for _, line in outcomes.values():
        assert PASSWORD not in line
        assert WRONG_PASSWORD not in line


async def test_tls_that_demands_a_client_certificate(tmp_path: Path) -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            config = config_for(tmp_path, server, web_config(tmp_path, tls=True, mtls=True))
            exporter = await start_exporter_from_file(nursery, config)
            base = {"LOXONE_LISTEN": f"127.0.0.1:{exporter.port}"}
            without = await run_check([str(config)], base)
            with_certificate = await run_check(
                [str(config)],
                base
                | {
                    "LOXONE_HEALTHCHECK_CERT_FILE": str(tmp_path / "certs" / "client.crt"),
                    "LOXONE_HEALTHCHECK_KEY_FILE": str(tmp_path / "certs" / "client.key"),
                },
            )
            nursery.cancel_scope.cancel()
    assert not without[0]
    assert without[1].startswith(f"unhealthy: https://127.0.0.1:{exporter.port}/-/healthy: ")
    assert with_certificate == (
        True,
        f"healthy: https://127.0.0.1:{exporter.port}/-/healthy answered 200",
    )


async def test_as_a_process_exit_code_and_output_without_the_password(tmp_path: Path) -> None:
    """``python -m loxone_trio_exporter.healthcheck``, as the HEALTHCHECK runs it."""
    password_file = tmp_path / "healthcheck-password"
    password_file.write_text(PASSWORD, encoding="utf-8")
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            config = config_for(tmp_path, server, web_config(tmp_path, tls=True, auth=True))
            exporter = await start_exporter_from_file(nursery, config)
            environ = {
                key: value for key, value in os.environ.items() if not key.startswith("LOXONE_")
            } | {
                "LOXONE_CONFIG_FILE": str(config),
                "LOXONE_LISTEN": f"0.0.0.0:{exporter.port}",
                "LOXONE_HEALTHCHECK_USERNAME": "prometheus",
                "LOXONE_HEALTHCHECK_PASSWORD_FILE": str(password_file),
            }
            command = [sys.executable, "-m", "loxone_trio_exporter.healthcheck"]
            good = await trio.run_process(
                command, env=environ, capture_stdout=True, capture_stderr=True, check=False
            )
            password_file.write_text(WRONG_PASSWORD, encoding="utf-8")
            bad = await trio.run_process(
                command, env=environ, capture_stdout=True, capture_stderr=True, check=False
            )
            nursery.cancel_scope.cancel()
    assert (good.returncode, good.stderr) == (0, b"")
    assert (
        good.stdout.decode()
        == f"healthy: https://127.0.0.1:{exporter.port}/-/healthy answered 200\n"
    )
    assert (bad.returncode, bad.stdout) == (1, b"")
    assert b"answered 401" in bad.stderr
    for result in (good, bad):
        for secret in (PASSWORD, WRONG_PASSWORD):
            assert secret.encode() not in result.stdout + result.stderr


def test_listen_addresses_and_the_config_file_lookup(tmp_path: Path) -> None:
    assert healthcheck.target("0.0.0.0:9504") == ("127.0.0.1", 9504)
    assert healthcheck.target("[::]:9600") == ("::1", 9600)
    assert healthcheck.target("[::1]:9600") == ("::1", 9600)
    assert healthcheck.target("192.0.2.7:9504") == ("192.0.2.7", 9504)
    with pytest.raises(healthcheck.CheckError, match="no fixed port"):
        healthcheck.target("127.0.0.1:0")
    # LOXONE_LISTEN_PORT moves the port as ``run`` does (the file's address, or the default).
    assert (healthcheck.Request([], {"LOXONE_LISTEN_PORT": "9105"}).port) == 9105
    config = tmp_path / "listen.toml"
    config.write_text('[web]\nlisten = ["127.0.0.2:9504"]\n', encoding="utf-8")
    moved = healthcheck.Request([str(config)], {"LOXONE_LISTEN_PORT": "9105"})
    assert (moved.host, moved.port) == ("127.0.0.2", 9105)
    assert healthcheck.CONTAINER_CONFIG_FILE == CONTAINER_CONFIG_FILE
    chosen = tmp_path / "exporter.toml"
    assert healthcheck.config_file([], {"LOXONE_CONFIG_FILE": str(chosen)}) == chosen
    assert healthcheck.config_file([str(chosen)], {"LOXONE_CONFIG_FILE": "/elsewhere"}) == chosen
    broken = tmp_path / "broken.toml"
    broken.write_text("[web\n", encoding="utf-8")
    healthy, line = healthcheck.check([str(broken)], {})
    assert not healthy
    assert line.startswith(f"unhealthy: cannot read {broken}: ")


def test_the_image_runs_it_as_its_healthcheck() -> None:
    text = (Path(__file__).resolve().parents[1] / "Containerfile").read_text(encoding="utf-8")
    assert 'CMD ["python", "-m", "loxone_trio_exporter.healthcheck"]' in text
