"""The end-to-end scenarios' processes: simulator and exporter, each alone in its process.

Both are started as their command lines start them (``loxone-trio-exporter simulate`` and
``run exporter.toml``), so what is measured is what runs in production. Resident memory comes
from ``/proc/<pid>/status`` and CPU time from ``/proc/<pid>/stat`` (utime + stime).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, Self

import tomli_w

from loxone_trio_exporter.state import FAMILIES

PACKAGE = "loxone_trio_exporter"
#: The checkout: the working directory of the processes, so ``-m benchmarks...`` is found.
ROOT = Path(__file__).resolve().parents[1]
#: Value series (``loxone_control_value`` + ``loxone_global_value``) per generated control:
#: 3.86 per control over 1k to 10k controls of the simulator's generator (3.92 at 100).
VALUE_SERIES_PER_CONTROL = 3.856
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_URL = re.compile(r"http://[^\s:]+:(\d+)\s")
#: The exporter's log line once it listens: "serving /metrics on http://127.0.0.1:PORT ...".
_SERVING = re.compile(r"serving \S+ on http://127\.0\.0\.1:(\d+)")


def controls_for(value_series: int) -> int:
    """Generated controls that give about ``value_series`` value series."""
    return max(1, round(value_series / VALUE_SERIES_PER_CONTROL))


def free_port() -> int:
    """A port nothing listens on right now (the exporter binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def rss_bytes(pid: int) -> int:
    """Resident set size of ``pid`` (``VmRSS``)."""
    return _status_field(pid, "VmRSS")


def peak_rss_bytes(pid: int) -> int:
    """The largest resident set size ``pid`` had (``VmHWM``)."""
    return _status_field(pid, "VmHWM")


def _status_field(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise LookupError(f"{field} not in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time ``pid`` has used so far."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    # The command name (field 2) may hold spaces: count fields after its closing parenthesis.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime: fields 14, 15


def _read_lines_until(stream: IO[str], done: str, timeout: float) -> list[str]:
    """Lines of ``stream`` up to one containing ``done``, within ``timeout`` seconds."""
    # A thread reads: select() cannot see lines already in the text stream's buffer.
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=_forward_lines, args=(stream, lines, done), daemon=True)
    reader.start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            raise TimeoutError(f"no line with {done!r} within {timeout:g} s: {seen}") from None
        if not line:
            raise RuntimeError(f"process ended before printing {done!r}: {seen}")
        seen.append(line)
        if done in line:
            return seen


def _forward_lines(stream: IO[str], lines: queue.Queue[str], done: str) -> None:
    for line in stream:
        lines.put(line)
        if done in line:
            return
    lines.put("")  # end of output


def _stop(process: subprocess.Popen[Any], within: float = 10.0) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(within)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    for pipe in (process.stdin, process.stdout):
        if pipe is not None:
            pipe.close()


class _ChildProcess:
    """A process of ours that ``with`` starts and stops (SIGTERM, then kill after 10 s)."""

    process: subprocess.Popen[Any] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class Simulator(_ChildProcess):
    """``loxone-trio-exporter simulate`` in its own process; ``ports`` once it listens."""

    def __init__(
        self,
        workdir: Path,
        *,
        controls: int,
        rate: float,
        count: int = 1,
        seed: int = 1,
        extra: Sequence[str] = (),
        module: str = PACKAGE,
        command: Sequence[str] = ("simulate",),
        start_timeout: float = 300.0,
    ) -> None:
        """``module`` and ``command``: what ``python -m`` runs (a simulator with the same
        options and banner). ``start_timeout``: how long generating and binding may take."""
        self.workdir = workdir
        self.start_timeout = start_timeout
        self._arguments = [
            sys.executable,
            "-m",
            module,
            *command,
            "--listen",
            "127.0.0.1:0",
            "--controls",
            str(controls),
            "--rate",
            str(rate),
            "--count",
            str(count),
            "--seed",
            str(seed),
            *extra,
        ]
        self.process: subprocess.Popen[str] | None = None
        self.ports: list[int] = []

    def start(self) -> Simulator:
        log = (self.workdir / "simulator.log").open("a")
        self.process = subprocess.Popen(
            self._arguments,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            bufsize=1,
            cwd=ROOT,
        )
        log.close()  # the child holds its own descriptor
        assert self.process.stdout is not None
        try:
            banner = _read_lines_until(self.process.stdout, "Users:", self.start_timeout)
        except BaseException:
            self.stop()  # never leave a simulator behind
            raise
        self.ports = [int(port) for line in banner for port in _PAGE_URL.findall(line)]
        return self

    def stats(self, index: int = 0) -> dict[str, Any]:
        status, body = http_get(self.ports[index], "/sim/stats")
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def events_sent(self, index: int = 0) -> int:
        return int(self.stats(index)["events_sent"].get("value", 0))

    def mark(self, value: float) -> float:
        """With ``benchmarks._marker_simulator``: set a state to ``value`` and send it; the
        ``time.monotonic()`` when it was sent."""
        assert self.process is not None
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(f"{value!r}\n")
        self.process.stdin.flush()
        return float(self.process.stdout.readline())

    def fault(self, kind: str, index: int = 0, **fields: Any) -> None:
        body = json.dumps({"kind": kind, **fields}).encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.ports[index], timeout=10)
        try:
            connection.request("POST", "/sim/fault", body=body)
            response = connection.getresponse()
            answer = response.read()
        finally:
            connection.close()
        assert response.status == 200, answer


class FloorClient(_ChildProcess):
    """``benchmarks._floor_client``: a bare trio-websocket client streaming from ``ports``."""

    def __init__(self, ports: Sequence[int], start_timeout: float = 120.0) -> None:
        self._arguments = [sys.executable, "-m", "benchmarks._floor_client", *map(str, ports)]
        self.start_timeout = start_timeout

    def start(self) -> FloorClient:
        self.process = subprocess.Popen(
            self._arguments, stdout=subprocess.PIPE, text=True, bufsize=1, cwd=ROOT
        )
        assert self.process.stdout is not None
        try:
            _read_lines_until(self.process.stdout, "streaming", self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def cpu_seconds(self) -> float:
        assert self.process is not None
        return cpu_seconds(self.process.pid)


class Exporter(_ChildProcess):
    """``loxone-trio-exporter run exporter.toml`` in its own process, for ``miniservers``
    (``(name, port)`` of simulated Miniservers with the simulator's default user); ``typed``
    is ``[export] typed``."""

    def __init__(
        self,
        workdir: Path,
        miniservers: Sequence[tuple[str, int]],
        *,
        name: str = "exporter",
        typed: bool = True,
    ) -> None:
        self.workdir = workdir
        self.port = 0  # learnt from the log once it serves: port 0 never collides
        state_dir = workdir / f"{name}-state"
        state_dir.mkdir(parents=True, exist_ok=True)
        document = {
            "state_dir": str(state_dir),
            "web": {"listen": ["127.0.0.1:0"]},
            # info: the line that names the bound port (a few lines per session, no per-event
            # or per-request lines)
            "log": {"level": "info"},
            "export": {"typed": typed},
            "miniserver": [
                {
                    "name": miniserver,
                    "host": "127.0.0.1",
                    "port": port,
                    "username": "demo",
                    "password": "demo",
                    "tls": "off",
                }
                for miniserver, port in miniservers
            ],
        }
        self.config_file = workdir / f"{name}.toml"
        self.config_file.write_text(tomli_w.dumps(document), encoding="utf-8")
        self.config_file.chmod(0o600)  # it holds a password: else ``run`` warns
        self._log_file = workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self._log_start = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Exporter:
        with self._log_file.open("ab") as log:
            # The log may hold earlier runs (same name, same workdir): only this run's lines
            # may name the port.
            self._log_start = log.tell()
            self.started_at = time.monotonic()
            self.process = subprocess.Popen(
                [sys.executable, "-m", PACKAGE, "run", str(self.config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                cwd=ROOT,
            )
        return self

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.05) -> float:
        """Wait until ``/-/ready`` answers 200 (every Miniserver streams); seconds since start."""
        return self._wait_for("/-/ready", timeout, interval)

    def wait_serving(self, timeout: float = 60.0) -> float:
        """Wait until the web server answers (``/-/healthy``); seconds since start."""
        return self._wait_for("/-/healthy", timeout, 0.05)

    def _wait_for(self, path: str, timeout: float, interval: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"exporter exited with {self.process.returncode}: {self.log()}")
            if not self.port:
                with self._log_file.open("rb") as log:
                    log.seek(self._log_start)
                    serving = _SERVING.search(log.read().decode(errors="replace"))
                if serving is None:
                    time.sleep(interval)
                    continue
                self.port = int(serving.group(1))
            with contextlib.suppress(OSError):
                status, _ = http_get(self.port, path)
                if status == 200:
                    return time.monotonic() - self.started_at
            time.sleep(interval)
        raise TimeoutError(f"no 200 from {path} within {timeout:g} s: {self.log()}")

    def scrape(self) -> bytes:
        status, body = http_get(self.port, "/metrics")
        assert status == 200, body[:200]
        return body

    def scrape_gzip(self) -> bytes:
        """``/metrics`` as Prometheus asks for it (``Accept-Encoding: gzip``), still compressed:
        a caller that times the scrape decompresses afterwards."""
        status, body = http_get(self.port, "/metrics", {"Accept-Encoding": "gzip"})
        assert status == 200, body[:200]
        return body

    def rss(self) -> int:
        return rss_bytes(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def log(self) -> str:
        try:
            return self._log_file.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def http_get(
    port: int, path: str, headers: dict[str, str] | None = None, timeout: float = 30.0
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def sample_value(body: bytes, name: str, **labels: str) -> float:
    """The value of the series of ``name`` whose labels include ``labels`` (text format); the
    sum when several match, 0 when none does."""
    total = 0.0
    prefix = name.encode()
    wanted = [f'{label}="{value}"'.encode() for label, value in labels.items()]
    for line in body.splitlines():
        if not line.startswith(prefix) or line.startswith(b"#"):
            continue
        head, _, value = line.rpartition(b" ")
        metric = head.split(b"{", 1)[0]
        if metric == prefix and all(pair in head for pair in wanted):
            total += float(value)
    return total


@contextlib.contextmanager
def keep_alive_clients(port: int, count: int) -> Iterator[list[http.client.HTTPConnection]]:
    """``count`` connections that each scraped ``/metrics`` once and stay open, idle, as
    Prometheus keeps its scrape connections between scrapes."""
    connections = []
    try:
        for _ in range(count):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            connection.request("GET", "/metrics")
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert not response.will_close, "the exporter closed a keep-alive connection"
            connections.append(connection)
        yield connections
    finally:
        for connection in connections:
            connection.close()


def control_series_in(body: bytes) -> int:
    """How many control value series a text-format body holds: ``loxone_control_value`` and
    the families of a unit (``loxone_control_temperature_celsius``, ...)."""
    return sum(body.count(b"\n" + family.name.encode() + b"{") for family in FAMILIES)
