"""The image built from the Containerfile with podman, run for real against the simulator.

One build per test session (module fixture ``image``): on ``python:3.13-slim`` when podman can
pull it, else on a base made here from Debian's packages (``debootstrap`` of bookworm with
python3, pip and venv, imported with ``podman import``) and given to the same Containerfile as
``PYTHON_IMAGE``. That base is kept in podman's storage under a tag naming its recipe, so later
sessions reuse it. The build reaches the package index the way pip on this machine does: its
index and certificate settings are handed to the build as a mounted ``/etc/pip.conf`` (and CA
file), which the Containerfile never sees.

Containers share the host's network (``--network host``): the simulator listens on loopback in
this test's process and the exporter in the container on a loopback port of its own; /metrics is
scraped from here.

``LOXONE_TEST_PYTHON_IMAGE`` names another base to build on. Where podman is missing the tests
skip; under ``LOXONE_TEST_STRICT=1`` they fail. Where podman is there but cannot run a container,
or the build fails, they fail.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
import bcrypt
import pytest
import trio
from conftest import strict_mode
from exporter_harness import poll_async, start_simulator
from http_client import http_request
from tls_material import issue, make_ca

ROOT = Path(__file__).resolve().parents[1]
OFFICIAL_BASE = "docker.io/library/python:3.13-slim"
BASE_SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates")
#: Debian's pip refuses to install outside a venv (PEP 668); python:3.13-slim has no such marker.
EXTERNALLY_MANAGED = "usr/lib/python3.11/EXTERNALLY-MANAGED"
BASE_RECIPE = (
    f"debootstrap --variant=minbase {BASE_SUITE} {','.join(BASE_PACKAGES)} -{EXTERNALLY_MANAGED}"
)
LOCAL_BASE = (
    "localhost/loxone-trio-exporter-test-base:"
    f"{BASE_SUITE}-{hashlib.sha256(BASE_RECIPE.encode()).hexdigest()[:12]}"
)
#: What lowers a container's limits where the runtime may not raise them (no CAP_SYS_RESOURCE):
#: lowering is always allowed, so these work everywhere.
LOW_ULIMITS = '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'
TIMEOUT = 60


def tool(name: str) -> str:
    """The full path of a command (they are looked up once they are known to be there)."""
    return shutil.which(name) or name


def missing(reason: str) -> None:
    if strict_mode():
        pytest.fail(f"{reason} (LOXONE_TEST_STRICT=1)")
    pytest.skip(reason)


@attrs.define
class Podman:
    environ: dict[str, str]
    #: What had to be set for containers to run here, for the report.
    settings: str = "podman's defaults"
    durations: dict[str, float] = attrs.field(factory=dict)

    def run(
        self, *args: str, check: bool = True, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                [tool("podman"), *args],
                env=self.environ,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result = subprocess.CompletedProcess(args, -1, "", f"no answer within {timeout} s")
        if check and result.returncode != 0:
            pytest.fail(
                f"podman {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]}"
            )
        return result

    async def arun(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        result = await trio.run_process(
            [tool("podman"), *args],
            env=self.environ,
            capture_stdout=True,
            capture_stderr=True,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"podman {' '.join(args)} exited {result.returncode}: {result.stderr[-3000:]!r}"
            )
        return result


def pip_settings() -> tuple[str, list[str]]:
    """A pip.conf for the build with this machine's index and CA, and the volumes it needs."""
    listed = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False
    ).stdout
    values: dict[str, str] = {}
    for line in listed.splitlines():
        key, _, value = line.partition("=")
        scope, _, name = key.rpartition(".")
        if scope in {"global", ":env:"}:  # the environment wins, as in pip
            values[name] = value.strip().strip("'\"")
    lines = ["[global]"]
    volumes: list[str] = []
    index = values.get("index-url", "")
    if index.startswith(("http://", "https://")):
        lines.append(f"index-url = {index}")
    cert = values.get("cert", "")
    if cert and Path(cert).is_file():
        lines.append("cert = /etc/ssl/certs/host-pip-ca.crt")
        volumes += ["-v", f"{cert}:/etc/ssl/certs/host-pip-ca.crt:ro"]
    return "\n".join(lines) + "\n", volumes


def build_local_base(podman: Podman, workdir: Path) -> None:
    if shutil.which("debootstrap") is None:
        missing(f"{OFFICIAL_BASE} cannot be pulled and debootstrap is not installed")
    if os.geteuid() != 0:
        missing(f"{OFFICIAL_BASE} cannot be pulled and debootstrap needs root")
    target = workdir / "base-root"
    try:
        result = subprocess.run(
            [
                tool("debootstrap"),
                "--variant=minbase",
                f"--include={','.join(BASE_PACKAGES)}",
                BASE_SUITE,
                str(target),
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(f"debootstrap failed: {result.stdout[-2000:]}{result.stderr[-2000:]}")
        (target / EXTERNALLY_MANAGED).unlink()
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for path in (target / cache).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen([tool("tar"), "-C", str(target), "-c", "."], stdout=subprocess.PIPE)
        change = ["--change", "ENV LANG=C.UTF-8", "--change", 'CMD ["python3"]']
        imported = subprocess.run(
            [tool("podman"), "import", *change, "-", LOCAL_BASE],
            stdin=tar.stdout,
            env=podman.environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            pytest.fail(f"tar | podman import failed: {imported.stderr[-2000:]}")
    finally:
        shutil.rmtree(target, ignore_errors=True)


def choose_base(podman: Podman, workdir: Path) -> str:
    chosen = os.environ.get("LOXONE_TEST_PYTHON_IMAGE", "")
    if chosen:
        return chosen
    if podman.run("image", "exists", OFFICIAL_BASE, check=False).returncode == 0:
        return OFFICIAL_BASE
    if podman.run("pull", "-q", OFFICIAL_BASE, check=False, timeout=300).returncode == 0:
        return OFFICIAL_BASE
    if podman.run("image", "exists", LOCAL_BASE, check=False).returncode != 0:
        started = time.monotonic()
        build_local_base(podman, workdir)
        podman.durations["base build"] = time.monotonic() - started
    return LOCAL_BASE


def settle_runtime(podman: Podman, base: str, workdir: Path) -> None:
    """Find what containers need to run here: podman's defaults, else lower ulimits, else runc
    (crun refuses a host whose cgroup v2 hierarchy has controllers beside cgroup v1)."""
    variants = [("podman's defaults", None), ("lower default_ulimits", LOW_ULIMITS)]
    if shutil.which("runc"):
        variants.append(
            ("lower default_ulimits and runc", LOW_ULIMITS + '[engine]\nruntime = "runc"\n')
        )
    errors = []
    for name, conf in variants:
        if conf is not None:
            path = workdir / f"containers-{len(errors)}.conf"
            path.write_text(conf, encoding="utf-8")
            podman.environ["CONTAINERS_CONF"] = str(path)
        probe = podman.run("run", "--rm", "--network", "host", base, "true", check=False)
        if probe.returncode == 0:
            podman.settings = name
            return
        errors.append(f"{name}: {probe.stderr.strip()}")
    pytest.fail("podman cannot run a container here:\n" + "\n".join(errors))


@attrs.frozen
class Image:
    podman: Podman
    tag: str
    base: str


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Image]:
    if shutil.which("podman") is None:
        missing("podman is not installed (apt-get install podman)")
    workdir = tmp_path_factory.mktemp("container")
    podman = Podman({**os.environ})
    base = choose_base(podman, workdir)
    settle_runtime(podman, base, workdir)
    pip_conf, volumes = pip_settings()
    (workdir / "pip.conf").write_text(pip_conf, encoding="utf-8")
    tag = f"localhost/loxone-trio-exporter:test-{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    build = podman.run(
        "build",
        "--layers=false",
        "--format=docker",  # OCI images drop HEALTHCHECK
        "--network=host",
        *volumes,
        "-v",
        f"{workdir / 'pip.conf'}:/etc/pip.conf:ro",
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--build-arg",
        "VERSION=0.1.0",
        "--build-arg",
        "REVISION=containertest",
        "-t",
        tag,
        str(ROOT),
        check=False,
        timeout=600,
    )
    podman.durations["image build"] = time.monotonic() - started
    (workdir / "build.log").write_text(build.stdout + build.stderr, encoding="utf-8")
    if build.returncode != 0:
        pytest.fail(f"podman build failed ({workdir / 'build.log'}): {build.stderr[-3000:]}")
    try:
        yield Image(podman, tag, base)
    finally:
        podman.run("rmi", "-f", tag, check=False)
        print(f"\ncontainer tests: base {base}, {podman.settings}, durations {podman.durations}")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@attrs.define
class Containers:
    """Containers and volumes a test made, removed at its end whatever happened."""

    image: Image
    names: list[str] = attrs.field(factory=list)
    volumes: list[str] = attrs.field(factory=list)

    def volume(self) -> str:
        name = f"lte-test-state-{uuid.uuid4().hex[:8]}"
        self.image.podman.run("volume", "create", name)
        self.volumes.append(name)
        return name

    async def start(self, options: Sequence[str], environ: dict[str, str]) -> str:
        name = f"lte-test-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        variables = [item for key, value in environ.items() for item in ("-e", f"{key}={value}")]
        await self.image.podman.arun(
            "run", "-d", "--name", name, "--network", "host", *variables, *options, self.image.tag
        )
        return name

    def remove(self) -> None:
        for name in self.names:
            self.image.podman.run("rm", "-f", "-t", "0", name, check=False)
        for name in self.volumes:
            self.image.podman.run("volume", "rm", "-f", name, check=False)


@pytest.fixture
def containers(image: Image) -> Iterator[Containers]:
    made = Containers(image)
    try:
        yield made
    finally:
        made.remove()


async def loxone_up(port: int, name: str, **request: object) -> bool:
    try:
        response = await http_request(port, "/metrics", **request)  # type: ignore[arg-type]
    except OSError:
        return False
    return (
        response.status == 200 and f'loxone_up{{miniserver="{name}"}} 1' in response.body.decode()
    )


async def inspect(podman: Podman, name: str, template: str) -> str:
    return (await podman.arun("inspect", "--format", template, name)).stdout.decode().strip()


async def test_image_serves_runs_as_65532_stops_on_sigterm_and_keeps_its_token(
    containers: Containers,
) -> None:
    podman = containers.image.podman
    started = time.monotonic()
    state = containers.volume()
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            port = free_port()
            environ = {
                "LOXONE_NAME": "home",
                "LOXONE_HOST": "127.0.0.1",
                "LOXONE_PORT": str(server.port),
                "LOXONE_USERNAME": "demo",
                "LOXONE_PASSWORD": "demo",
                "LOXONE_LISTEN": f"127.0.0.1:{port}",
            }
            options = ["-v", f"{state}:/var/lib/loxone-trio-exporter"]
            first = await containers.start(options, environ)
            await poll_async(lambda: loxone_up(port, "home"), within=60)
            assert (server.accounts.logins_ok, len(server.accounts.tokens)) == (1, 1)

            # The image's HEALTHCHECK passes, and podman records it.
            check = await podman.arun("healthcheck", "run", first, check=False)
            assert check.returncode == 0, check
            assert await inspect(podman, first, "{{.State.Health.Status}}") == "healthy"

            # The exporter's process runs as 65532, seen from the host and from podman.
            pid = await inspect(podman, first, "{{.State.Pid}}")
            if os.geteuid() == 0:  # rootful: no user namespace, host IDs are the container's
                status = (await trio.Path(f"/proc/{pid}/status").read_text()).splitlines()
                uid_line = next(line for line in status if line.startswith("Uid:"))
                assert uid_line.split()[1:] == ["65532"] * 4
            top = await podman.arun("top", first, "user", "group")
            assert top.stdout.decode().split()[2:] == ["65532", "65532"]

            # SIGTERM (what `podman stop` sends) ends it well within the stop timeout, with the
            # exit code of a clean stop (0; 137 would be podman's SIGKILL after the timeout).
            before = time.monotonic()
            await podman.arun("stop", "-t", "10", first)
            stop_seconds = time.monotonic() - before
            assert stop_seconds < 5
            assert await inspect(podman, first, "{{.State.ExitCode}}") == "0"

            # A second container on the same volume logs in with the stored token: one more
            # login, no new token.
            second = await containers.start(options, environ)
            await poll_async(lambda: loxone_up(port, "home"), within=60)
            assert (server.accounts.logins_ok, len(server.accounts.tokens)) == (2, 1)
            await podman.arun("stop", "-t", "10", second)
            nursery.cancel_scope.cancel()
    podman.durations["SIGTERM stop"] = stop_seconds
    podman.durations["run test"] = time.monotonic() - started


PASSWORD = "Container-s3cret-Passw0rd"


async def test_healthcheck_with_basic_auth_and_tls_from_a_mounted_config(
    containers: Containers, tmp_path: Path
) -> None:
    """What used to fail with 401: a mounted exporter.toml whose web config asks for TLS and
    basic auth; the check's credentials come from the environment and a mounted secret."""
    podman = containers.image.podman
    started = time.monotonic()
    config_dir = tmp_path / "etc"
    certs = config_dir / "certs"
    certs.mkdir(parents=True)
    ca = make_ca(certs)
    issue(certs, "server", ca, ip_addresses=("127.0.0.1",))
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(4)).decode()
    (config_dir / "web.yml").write_text(
        "tls_server_config:\n  cert_file: certs/server.crt\n  key_file: certs/server.key\n"
        f"basic_auth_users:\n  prometheus: {hashed}\n",
        encoding="utf-8",
    )
    (tmp_path / "healthcheck-password").write_text(PASSWORD, encoding="utf-8")
    with trio.fail_after(120):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery)
            port = free_port()
            (config_dir / "exporter.toml").write_text(
                f'[web]\nlisten = ["127.0.0.1:{port}"]\nweb_config_file = "web.yml"\n\n'
                f'[[miniserver]]\nname = "home"\nhost = "127.0.0.1"\nport = {server.port}\n'
                'username = "demo"\npassword = "demo"\ntls = "off"\n',
                encoding="utf-8",
            )
            # Readable by 65532 in the container (the directories above are the test's own).
            for path in [
                config_dir,
                certs,
                *config_dir.rglob("*"),
                tmp_path / "healthcheck-password",
            ]:
                path.chmod(0o755 if path.is_dir() else 0o644)
            name = await containers.start(
                [
                    "-v",
                    f"{config_dir}:/etc/loxone-trio-exporter:ro",
                    "-v",
                    f"{tmp_path / 'healthcheck-password'}:/run/secrets/healthcheck:ro",
                ],
                {
                    "LOXONE_HEALTHCHECK_USERNAME": "prometheus",
                    "LOXONE_HEALTHCHECK_PASSWORD_FILE": "/run/secrets/healthcheck",
                },
            )
            context = ssl.create_default_context(cafile=str(ca.cert_file))
            token = base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()
            authorization = [("Authorization", f"Basic {token}")]
            await poll_async(
                lambda: loxone_up(port, "home", ssl_context=context, headers=authorization),
                within=60,
            )
            check = await podman.arun("healthcheck", "run", name, check=False)
            assert check.returncode == 0, check
            assert await inspect(podman, name, "{{.State.Health.Status}}") == "healthy"
            # The check's output, as podman keeps it, names the URL and never the password.
            log = json.loads(await inspect(podman, name, "{{json .State.Health.Log}}"))
            assert f"healthy: https://127.0.0.1:{port}/-/healthy answered 200" in log[-1]["Output"]
            assert all(PASSWORD not in entry["Output"] for entry in log)
            nursery.cancel_scope.cancel()
    podman.durations["auth and TLS test"] = time.monotonic() - started
