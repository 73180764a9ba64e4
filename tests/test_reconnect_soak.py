"""Many reconnect cycles leave nothing behind: no extra tasks, file descriptors or memory.

The whole exporter and the simulator run in this process over real loopback sockets; the
simulator cuts the connection again and again, and the exporter (with a tiny reconnect backoff)
logs in again each time. ``LOXONE_SOAK_CYCLES`` sets the number of cycles (default 200; the note
of the production-hardening issue reports a run of 1,000).
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import trio
from exporter_harness import miniserver, poll, start_exporter, start_simulator

from loxone_trio_exporter.runtime._connection import Timeouts
from loxone_trio_exporter.simulator import Fault, FaultKind

CYCLES = int(os.environ.get("LOXONE_SOAK_CYCLES", "200"))
WARM_UP = 20


def task_count() -> int:
    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(
            count(child) for nursery in task.child_nurseries for child in nursery.child_tasks
        )

    return count(trio.lowlevel.current_root_task())


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


def resident_kib() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


async def test_reconnect_cycles_leak_no_tasks_descriptors_or_memory(tmp_path: Path) -> None:
    timeouts = Timeouts(reconnect_base=0.001, reconnect_cap=0.002)
    samples: dict[str, tuple[int, int, int]] = {}
    with trio.fail_after(30 + CYCLES * 0.5):
        async with trio.open_nursery() as nursery:
            server = await start_simulator(nursery, controls=20, rate=50.0)
            exporter = await start_exporter(
                nursery, tmp_path, [miniserver(server)], timeouts=timeouts
            )
            await exporter.wait_until_streaming("home")
            for cycle in range(1, CYCLES + 1):
                server.inject(Fault(FaultKind.DROP))
                await poll(lambda c=cycle: server.accounts.logins_ok == c + 1, within=10)
                await exporter.wait_until_streaming("home")
                if cycle in (WARM_UP, CYCLES):
                    await trio.sleep(0.05)  # let closed sockets finish closing
                    gc.collect()
                    samples[str(cycle)] = (task_count(), open_descriptors(), resident_kib())
            scrape = await exporter.samples()
            nursery.cancel_scope.cancel()
    (tasks_before, fds_before, rss_before) = samples[str(WARM_UP)]
    (tasks_after, fds_after, rss_after) = samples[str(CYCLES)]
    print(
        f"after {WARM_UP} and {CYCLES} cycles: tasks {tasks_before} -> {tasks_after}, "
        f"fds {fds_before} -> {fds_after}, RSS {rss_before} -> {rss_after} KiB"
    )
    assert tasks_after == tasks_before
    assert fds_after <= fds_before + 2  # a socket may still be closing at the moment of counting
    assert rss_after - rss_before < 8 * 1024  # KiB: far less than a leak of one session per cycle
    reconnects = [
        v for (name, labels), v in scrape.items() if name == "loxone_exporter_reconnects_total"
    ]
    assert sum(reconnects) == CYCLES
    assert server.accounts.logins_failed == 0
    assert len(list(server.accounts.tokens)) == 1  # every reconnect reused the one token
