"""How many bytes of state tables one connection may have on their way to the state owner.

The channel to the owner is bounded in messages, not bytes: 1,024 queued tables of a few hundred
bytes are nothing, 1,024 tables of 15 MiB are 15 GiB. A connection reads a table much faster
than the owner applies it (a 15 MiB value table: milliseconds to read, most of a second to
apply), so a Miniserver that sends large tables back to back would fill memory. Each connection
therefore counts the bytes of the tables it sent and the owner has not applied yet, and waits
while they exceed ``TABLE_BYTES_IN_FLIGHT``. Ordinary tables never wait: a whole structure's
initial value table is a few MB at most.
"""

from __future__ import annotations

import trio

#: Bytes of unapplied tables one connection may have queued; a single larger table still goes,
#: alone. 8 MiB let a flood of 64 KiB tables hold 15 MB more RSS (allocator high water);
#: 2 MiB holds 0.3 MB more and applies as many events per second (benchmarks/hostile.py).
TABLE_BYTES_IN_FLIGHT = 2 * 1024 * 1024


class TableBudget:
    """Bytes of one connection's tables sent and not yet applied (trio thread only)."""

    def __init__(self, limit: int = TABLE_BYTES_IN_FLIGHT) -> None:
        self._limit = limit
        self._in_flight = 0
        self._freed: trio.Event | None = None

    @property
    def in_flight(self) -> int:
        return self._in_flight

    async def acquire(self, size: int) -> None:
        """Wait until ``size`` more bytes fit (at once when they do: no checkpoint, the hot
        path's reads are the checkpoints)."""
        while self._in_flight and self._in_flight + size > self._limit:
            if self._freed is None:
                self._freed = trio.Event()
            await self._freed.wait()
        self._in_flight += size

    def try_acquire(self, size: int) -> bool:
        """Count ``size`` more bytes if they fit now; ``False`` (nothing counted) when
        ``acquire`` would wait."""
        if self._in_flight and self._in_flight + size > self._limit:
            return False
        self._in_flight += size
        return True

    def release(self, size: int) -> None:
        """The owner applied (or dropped) a table of ``size`` bytes."""
        self._in_flight = max(0, self._in_flight - size)
        if self._freed is not None:
            self._freed.set()
            self._freed = None
