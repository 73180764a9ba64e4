"""Auth flood scenario: a valid scraper's wait while 300 clients send wrong passwords.

Each flood runs against a fresh exporter (``run exporter.toml`` with a web config whose
``basic_auth_users`` have bcrypt cost 10, as the toolkit's example) so no cache or failure history
carries over. The flood is a separate process (``python -m benchmarks.auth_flood``, trio): 300
clients on loopback, each sending a wrong password for the configured user as soon as the
previous one is answered, bounded in requests and time. Once every client has had an answer,
this process times GET /metrics with the credentials of a user not yet checked (a new
connection each, as a restarted Prometheus makes), one user per sample, so every sample needs a
bcrypt run. The floods:

- the same wrong password from every client (a misconfigured fleet, a dumb attacker);
- a new wrong password on every request over keep-alive connections (a brute-force attacker);
- a new wrong password on a new connection every time: nothing tells these from the scraper's
  own new connection on the same address, so they queue in arrival order (no budget; the figure
  says how long);
- the same from another address (127.0.0.2; the scraper stays on 127.0.0.1), as an attacker who
  does not share the scraper's host or NAT.

Samples are a second apart, as scrapes are spaced: back to back, a sample would profit from the
previous one's success (a success clears its address from the failure history).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import subprocess
import sys
import time
import tomllib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
import bcrypt
import tomli_w
import trio

from ._processes import ROOT, Exporter, Simulator, _read_lines_until, free_port
from ._results import Budget, Figure, at_most, figure
from ._settings import Settings, quick_settings

SCENARIO = "auth flood"
BUDGET_MS = 1000.0  # design: answered well within Prometheus's 10 s scrape timeout
FLOOD_USER = "prometheus"
FLOODING = "flooding"  # the flood process's line once every client has had an answer
REQUEST_TIMEOUT_SECONDS = 120.0
SAMPLE_INTERVAL_SECONDS = 1.0
SCRAPER_ADDRESS = "127.0.0.1"
WARM_UP_TIMEOUT_SECONDS = 120.0


@attrs.frozen
class Sizes:
    clients: int = 300
    bcrypt_cost: int = 10
    samples_per_run: int = 2  # valid-credential requests per run of the suite
    #: Bounds of one flood process, whatever happens to the one that stops it.
    flood_seconds: float = 600.0
    flood_requests: int = 2_000_000


QUICK_SIZES = Sizes(clients=20, bcrypt_cost=4, samples_per_run=1, flood_seconds=60.0)


@attrs.frozen
class Flood:
    label: str
    mode: str  # the flood process's --mode
    budget: Budget | None
    source_address: str = SCRAPER_ADDRESS


FLOODS = (
    Flood("same wrong password", "same", at_most(BUDGET_MS)),
    Flood("a new wrong password per request", "new-password", at_most(BUDGET_MS)),
    Flood("a new wrong password and connection per request", "new-connection", None),
    Flood(
        "a new wrong password and connection per request, from 127.0.0.2",
        "new-connection",
        at_most(BUDGET_MS),
        source_address="127.0.0.2",
    ),
)


def run(settings: Settings) -> list[Figure]:
    sizes = _sizes(settings)
    samples = settings.runs * sizes.samples_per_run
    scrapers = {f"scraper-{index}": f"valid-{index}" for index in range(samples)}
    web_config = _write_web_config(settings.workdir, scrapers, sizes.bcrypt_cost)
    figures: list[Figure] = []
    with Simulator(settings.workdir, controls=20, rate=10.0) as simulator:
        miniservers = [("home", simulator.ports[0])]
        with _ProtectedExporter(settings.workdir, miniservers, web_config, "quiet") as exporter:
            exporter.wait_protected()
            latencies = _valid_requests_ms(exporter.port, scrapers)
        figures.append(
            figure(
                SCENARIO,
                "valid uncached credential, no flood",
                "ms",
                latencies.milliseconds,
                note=latencies.note(f"bcrypt cost {sizes.bcrypt_cost}"),
            )
        )
        for number, flood in enumerate(FLOODS):
            name = f"flood-{number}"
            with _ProtectedExporter(settings.workdir, miniservers, web_config, name) as exp:
                exp.wait_protected()
                figures += _under_flood(exp.port, flood, sizes, scrapers)
    return figures


def _sizes(settings: Settings) -> Sizes:
    # --quick (the smoke run) is told by its settings: Settings has no flag of its own.
    quick = attrs.evolve(settings, runs=1) == quick_settings(settings.workdir)
    return QUICK_SIZES if quick else Sizes()


def _write_web_config(workdir: Path, scrapers: dict[str, str], cost: int) -> Path:
    users = {FLOOD_USER: "the-right-password", **scrapers}
    hashed = {
        user: bcrypt.hashpw(password.encode(), bcrypt.gensalt(cost)).decode()
        for user, password in users.items()
    }
    path = workdir / "auth-flood-web.yml"
    lines = "".join(f'  {user}: "{password_hash}"\n' for user, password_hash in hashed.items())
    path.write_text(f"basic_auth_users:\n{lines}", encoding="utf-8")
    return path


def _under_flood(port: int, flood: Flood, sizes: Sizes, scrapers: dict[str, str]) -> list[Figure]:
    with _flood_process(port, flood, sizes) as flood_process:
        latencies = _valid_requests_ms(port, scrapers)
    report = flood_process.report
    note = f"{sizes.clients} clients, bcrypt cost {sizes.bcrypt_cost}"
    prefix = f"{sizes.clients} clients, {flood.label}"
    return [
        figure(
            SCENARIO,
            f"{prefix}: valid uncached credential",
            "ms",
            latencies.milliseconds,
            flood.budget,
            note=latencies.note(note),
        ),
        figure(SCENARIO, f"{prefix}: flood answers", "answers/s", [report["answers_per_second"]]),
        figure(
            SCENARIO,
            f"{prefix}: flood answers other than 401",
            "answers",
            [report["not_401"]],
            at_most(0),
        ),
    ]


@attrs.frozen
class _Latencies:
    milliseconds: list[float]
    timed_out: int  # requests given up after REQUEST_TIMEOUT_SECONDS, counted at that value

    def note(self, base: str) -> str:
        if not self.timed_out:
            return base
        return f"{base}; {self.timed_out} timed out at {REQUEST_TIMEOUT_SECONDS:g} s"


def _valid_requests_ms(port: int, scrapers: dict[str, str]) -> _Latencies:
    milliseconds = []
    timed_out = 0
    for sample, (user, password) in enumerate(scrapers.items()):
        if sample:
            time.sleep(SAMPLE_INTERVAL_SECONDS)
        started = time.monotonic()
        try:
            status = _get(port, "/metrics", _authorization(user, password))
        except TimeoutError:
            timed_out += 1  # a figure, not a crash: this is what the scraper would have seen
            status = 200
        milliseconds.append((time.monotonic() - started) * 1000.0)
        if status != 200:
            raise RuntimeError(f"{user}: {status} instead of 200")
    return _Latencies(milliseconds, timed_out)


def _get(port: int, path: str, authorization: str | None = None) -> int:
    connection = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=REQUEST_TIMEOUT_SECONDS, source_address=(SCRAPER_ADDRESS, 0)
    )
    try:
        headers = {} if authorization is None else {"Authorization": authorization}
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def _authorization(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _ProtectedExporter(Exporter):
    """The suite's exporter with a web config file. It listens on a port chosen here and is
    ready once an anonymous request gets 401: ``Exporter``'s own waits want a 200."""

    def __init__(
        self, workdir: Path, miniservers: Sequence[tuple[str, int]], web_config: Path, name: str
    ) -> None:
        super().__init__(workdir, miniservers, name=f"auth-flood-{name}")
        self.port = free_port()
        document = tomllib.loads(self.config_file.read_text("utf-8"))
        document["web"] = {
            "listen": [f"127.0.0.1:{self.port}"],
            "web_config_file": str(web_config),
        }
        self.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")

    def wait_protected(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"exporter exited with {self.process.returncode}: {self.log()}")
            with contextlib.suppress(OSError):
                if _get(self.port, "/-/healthy") == 401:
                    return
            time.sleep(0.05)
        raise TimeoutError(f"no 401 from /-/healthy within {timeout:g} s: {self.log()}")


@attrs.define
class _FloodProcess:
    process: subprocess.Popen[str]
    report: dict[str, Any] = attrs.Factory(dict)


@contextlib.contextmanager
def _flood_process(port: int, flood: Flood, sizes: Sizes) -> Iterator[_FloodProcess]:
    """The flood running, every client answered at least once; its report once it ended."""
    arguments = [
        *(sys.executable, "-m", "benchmarks.auth_flood", "--port", str(port)),
        *("--mode", flood.mode, "--source-address", flood.source_address),
        *("--clients", str(sizes.clients)),
        *("--seconds", str(sizes.flood_seconds), "--requests", str(sizes.flood_requests)),
    ]
    process = subprocess.Popen(
        arguments, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    running = _FloodProcess(process)
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        _read_lines_until(process.stdout, FLOODING, WARM_UP_TIMEOUT_SECONDS)
        yield running
    finally:
        process.stdin.close()  # the flood's signal to stop
        output = process.stdout.read()
        process.wait(timeout=30)
        process.stdout.close()
    running.report = json.loads(output.strip().splitlines()[-1])


# --- the flood process: python -m benchmarks.auth_flood --------------------------------------


@attrs.define
class _FloodState:
    requests_left: int
    clients_answered: set[int] = attrs.Factory(set)
    statuses: Counter[int] = attrs.Factory(Counter)
    errors: int = 0
    ready_at: float | None = None
    answers_when_ready: int = 0

    @property
    def answers(self) -> int:
        return sum(self.statuses.values())


class _ClosedByServer(Exception):
    pass


async def _flood(options: argparse.Namespace) -> dict[str, Any]:
    state = _FloodState(requests_left=options.requests)
    with trio.move_on_after(options.seconds):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_stop_when_stdin_ends, nursery.cancel_scope)
            async with trio.open_nursery() as clients:
                for index in range(options.clients):
                    clients.start_soon(_flood_client, index, options, state)
            nursery.cancel_scope.cancel()  # every client used up the requests
    ready_at = state.ready_at if state.ready_at is not None else trio.current_time()
    seconds = max(trio.current_time() - ready_at, 1e-9)
    return {
        "answers": state.answers,
        "answers_per_second": (state.answers - state.answers_when_ready) / seconds,
        "not_401": state.answers - state.statuses[401],
        "statuses": dict(state.statuses),
        "connection_errors": state.errors,
    }


async def _stop_when_stdin_ends(scope: trio.CancelScope) -> None:
    await trio.to_thread.run_sync(sys.stdin.read, abandon_on_cancel=True)
    scope.cancel()


async def _flood_client(index: int, options: argparse.Namespace, state: _FloodState) -> None:
    one_request_per_connection = options.mode == "new-connection"
    sent = 0
    while state.requests_left > 0:
        try:
            stream = await trio.open_tcp_stream(
                "127.0.0.1", options.port, local_address=options.source_address
            )
        except OSError:
            state.errors += 1
            await trio.sleep(0.1)
            continue
        async with stream:
            try:
                buffer = bytearray()
                while state.requests_left > 0:
                    state.requests_left -= 1
                    sent += 1
                    password = "wrong" if options.mode == "same" else f"wrong-{index}-{sent}"
                    request = _flood_request(options.port, password, one_request_per_connection)
                    await stream.send_all(request)
                    status, buffer = await _read_response(stream, buffer)
                    _count_answer(state, index, status, options.clients)
                    if one_request_per_connection:
                        break
            except (trio.BrokenResourceError, _ClosedByServer):
                state.errors += 1


def _flood_request(port: int, password: str, close: bool) -> bytes:
    lines = [
        "GET /metrics HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Authorization: {_authorization(FLOOD_USER, password)}",
        *(["Connection: close"] if close else []),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


async def _read_response(stream: trio.SocketStream, buffer: bytearray) -> tuple[int, bytearray]:
    """Status of one response; what was read beyond it stays in the returned buffer."""
    while b"\r\n\r\n" not in buffer:
        await _receive_into(stream, buffer)
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    body = bytearray(rest)
    while len(body) < length:
        await _receive_into(stream, body)
    return status, body[length:]


async def _receive_into(stream: trio.SocketStream, buffer: bytearray) -> None:
    data = await stream.receive_some(65536)
    if not data:
        raise _ClosedByServer
    buffer += data


def _count_answer(state: _FloodState, index: int, status: int, clients: int) -> None:
    state.statuses[status] += 1
    if state.ready_at is None:
        state.clients_answered.add(index)
        if len(state.clients_answered) == clients:
            state.ready_at = trio.current_time()
            state.answers_when_ready = state.answers
            print(FLOODING, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.auth_flood")
    parser.add_argument("--port", type=int, required=True, help="the exporter's, on loopback")
    parser.add_argument("--mode", choices=[flood.mode for flood in FLOODS], required=True)
    parser.add_argument("--source-address", default=SCRAPER_ADDRESS, help="a loopback address")
    parser.add_argument("--clients", type=int, default=Sizes().clients)
    parser.add_argument("--seconds", type=float, required=True, help="the most it may last")
    parser.add_argument("--requests", type=int, required=True, help="the most it may send")
    options = parser.parse_args(argv)
    report = trio.run(_flood, options)
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
