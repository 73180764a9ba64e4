"""Hostile-Miniserver scenario: memory while a Miniserver floods the exporter (issue: isolation).

Floods (the simulator's ``flood`` fault, exporter and simulator in their own processes, 10k
value series streaming at 100 events/s): value tables of 64 KiB whose UUIDs are not in the
structure, text tables of 64 KiB with new UUIDs and 1,000 bytes of text each, and 15 MiB value
tables back to back, each for ``hostile_seconds``. The exporter's RSS is read before each flood
(its steady state), every few seconds during it, and once the flood has stopped, its last
tables are applied (the count of unknown states stands still for a second) and the exporter
streams again: the budget is 10 MB of growth after the flood. The RSS during the flood
is in the note: receiving a 15 MiB table briefly holds it twice (the WebSocket client's
fragments and their join). Blocks of 1 MiB and more are mapped on their own and the state owner
trims the heap half a second after the last large table, so the pages go back after the flood.

Refusals (in this process): a structure of 17 MiB in four-byte characters (16 M characters
would pass a limit that counts characters) is sent to the exporter's WebSocket (trio-websocket) 100
times, a new connection each time, with the cyclic collector left to itself. RSS is read after
each try; the figure is the median of the last ten minus the median of the first ten (a single
reading moves by several MB with where the allocator happens to be), which must be within 10 MB.
"""

from __future__ import annotations

import os
import time
from statistics import median

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from loxone_trio_exporter.runtime import SessionEnded, return_large_blocks_at_once
from loxone_trio_exporter.runtime._transport import MAX_MESSAGE_SIZE, open_websocket

from ._pipeline import miniserver_split
from ._processes import Exporter, Simulator, rss_bytes, sample_value
from ._results import Figure, at_most, figure
from ._settings import Settings

SCENARIO = "hostile"
BUDGET_MB = 10.0
MB = 1_000_000
FLOODS = (
    ("unknown-UUID value tables of 64 KiB", {"table": "value", "size": 64 * 1024}),
    ("new-UUID text tables of 64 KiB", {"table": "text", "size": 64 * 1024}),
    ("15 MiB value tables back to back", {"table": "value", "size": 15 * 1024 * 1024}),
)


def run(settings: Settings) -> list[Figure]:
    return [*_floods(settings), *_refusals(settings)]


def _floods(settings: Settings) -> list[Figure]:
    count, controls = miniserver_split(settings.hostile_series)
    figures: list[Figure] = []
    with Simulator(settings.workdir, controls=controls, count=count, rate=100.0) as simulator:
        names = [(f"ms{index + 1}", port) for index, port in enumerate(simulator.ports)]
        with Exporter(settings.workdir, names, name="hostile") as exporter:
            exporter.wait_ready()
            for name, options in FLOODS:
                time.sleep(settings.settle_seconds)
                before = exporter.rss()
                unknown_before = _unknown(exporter)
                simulator.fault("flood", seconds=settings.hostile_seconds, **options)
                during = _rss_during(exporter, settings.hostile_seconds)
                simulator.fault("clear")
                exporter.wait_ready()
                _wait_until_drained(exporter)
                time.sleep(settings.settle_seconds)
                after = exporter.rss()
                unknown = _unknown(exporter) - unknown_before
                note = (
                    f"{settings.hostile_seconds:g} s; RSS {before / MB:.1f} MB before, "
                    f"{min(during) / MB:.1f}-{max(during) / MB:.1f} MB during, "
                    f"{after / MB:.1f} MB after; {unknown:,.0f} unknown states counted"
                )
                figures.append(
                    figure(
                        SCENARIO,
                        f"RSS growth, {name}",
                        "MB",
                        [(after - before) / MB],
                        at_most(BUDGET_MB),
                        note=note,
                    )
                )
    return figures


def _rss_during(exporter: Exporter, seconds: float) -> list[int]:
    """RSS readings spread over ``seconds`` (at least one, at the end)."""
    readings: list[int] = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        readings.append(exporter.rss())
    return readings or [exporter.rss()]


def _wait_until_drained(exporter: Exporter, within: float = 30.0) -> None:
    """Until the flood's last tables are applied: tables sent before the flood stopped may
    still sit in socket buffers and the session's queue. The unknown-state count stops
    growing then (tables of known states go on)."""
    end = time.monotonic() + within
    count = _unknown(exporter)
    while time.monotonic() < end:
        time.sleep(1.0)
        count, previous = _unknown(exporter), count
        if count == previous:
            return


def _unknown(exporter: Exporter) -> float:
    return sample_value(exporter.scrape(), "loxone_exporter_unknown_states_total", miniserver="ms1")


def _refusals(settings: Settings) -> list[Figure]:
    """RSS of this process over many refused over-limit structures: first tries against last."""
    return_large_blocks_at_once()  # as ``run`` sets up the exporter's process
    text = "\N{GRINNING FACE}" * (17 * 1024 * 1024 // 4)  # 17 MiB in UTF-8, 4.4 M characters
    assert len(text) < MAX_MESSAGE_SIZE < len(text.encode())
    readings: list[int] = []
    for _ in range(settings.hostile_refusals):
        trio.run(_one_try, text)
        readings.append(rss_bytes(os.getpid()))
    window = max(1, min(10, len(readings) // 2))
    first, last = median(readings[:window]), median(readings[-window:])
    note = (
        f"{settings.hostile_refusals} refusals of a 17 MiB structure of 4-byte characters; "
        f"median RSS of the first {window} tries {first / MB:.1f} MB, of the last {window} "
        f"{last / MB:.1f} MB (all {min(readings) / MB:.1f}-{max(readings) / MB:.1f} MB); "
        "cyclic collector untouched"
    )
    return [
        figure(
            SCENARIO,
            "RSS growth over refused over-limit structures",
            "MB",
            [(last - first) / MB],
            at_most(BUDGET_MB),
            note=note,
        )
    ]


async def _one_try(text: str) -> None:
    # A socket pair, as the exporter has a TCP socket: what is sent and not read waits in the
    # kernel, not in a Python byte queue that lives on in a reference cycle of the harness.
    left, right = trio.socket.socketpair()
    ours, theirs = trio.SocketStream(left), trio.SocketStream(right)
    server = WSConnection(ConnectionType.SERVER)

    async def serve() -> None:
        while True:
            server.receive_data(await theirs.receive_some())
            if any(isinstance(event, Request) for event in server.events()):
                break
        await theirs.send_all(server.send(AcceptConnection(subprotocol="remotecontrol")))
        payload = server.send(TextMessage(text))
        view = memoryview(payload)
        for start in range(0, len(view), 1 << 20):  # as a socket delivers it, in pieces
            await theirs.send_all(view[start : start + (1 << 20)])

    async with ours, theirs, trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        detail = "no refusal"
        try:
            async with open_websocket(
                ours, "127.0.0.1", upgrade_seconds=10, update_retry=5, booting_retry=5
            ) as ws:
                await ws.receive()
        except SessionEnded as ended:
            detail = ended.detail
        if "16 MiB limit" not in detail:
            raise AssertionError(f"an over-limit structure was not refused ({detail})")
        nursery.cancel_scope.cancel()
