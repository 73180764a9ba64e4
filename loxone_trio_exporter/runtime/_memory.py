"""Giving freed memory back to the operating system (glibc's ``malloc_trim``).

Large temporaries (a structure file's text and its JSON tree, parsed in a worker thread; a
scrape's body) are freed in the C heap but glibc keeps the pages: in the worker thread's own
arena, and in the main heap wherever a long-lived block sits above them. ``malloc_trim(0)``
hands every free page back (all arenas, the middle of the heap too). Where glibc is missing
(musl, macOS) this does nothing.

glibc also gives threads arenas of their own (up to eight per core), each growing and keeping
its pages on its own. The exporter's threads are trio's workers (structure parses, name
lookups), whose blocks are few and short-lived: ``limit_malloc_arenas`` keeps them to two, so
their freed pages join the main heap's instead of pinning arenas of their own (measured with
``MALLOC_ARENA_MAX=2``, the same setting: 100k value series 155 -> 147 MB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
from collections.abc import Callable

import trio
import trio.lowlevel

#: ``mallopt``'s parameter for the most arenas glibc makes (malloc.h: ``M_ARENA_MAX``).
_M_ARENA_MAX = -8
#: Arenas for the whole process: the main one and one for the worker threads.
MALLOC_ARENAS = 2
#: ``mallopt``'s parameter for the size from which a block gets pages of its own (mmap).
_M_MMAP_THRESHOLD = -3


def _find_libc_function(function: str) -> Callable[..., int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        found: Callable[..., int] = getattr(ctypes.CDLL(name), function)
    except (OSError, AttributeError):
        return None
    return found


_MALLOC_TRIM = _find_libc_function("malloc_trim")
_MALLOPT = _find_libc_function("mallopt")


def release_free_memory() -> None:
    """Return the C heap's free pages to the operating system (see module doc)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def limit_malloc_arenas() -> bool:
    """Let glibc make at most ``MALLOC_ARENAS`` arenas (see module doc); call it before the
    first worker thread allocates. An arena made before stays. Whether the C library took it:
    elsewhere than on glibc this does nothing."""
    return _MALLOPT is not None and _MALLOPT(_M_ARENA_MAX, MALLOC_ARENAS) == 1


#: Blocks from this size up are mapped on their own and unmapped when freed.
LARGE_BLOCK_BYTES = 1024 * 1024


def return_large_blocks_at_once(threshold: int = LARGE_BLOCK_BYTES) -> bool:
    """Have every block of ``threshold`` bytes or more mapped on its own, so freeing it gives
    its pages back to the operating system at once. Returns whether the allocator took it.

    glibc starts at 128 KiB but raises its threshold to the size of each mapped block that is
    freed, up to 32 MiB: after the first 15 MiB WebSocket message, every later one (and its
    join, and a structure file's text) comes from the heap, whose pages stay with the process
    after the flood is over. A fixed threshold keeps the dynamic raise off. The price is a fresh
    mapping per large block (page faults, about 1 ms per 15 MiB), paid only for messages and
    bodies of a MiB and more.
    """
    return _MALLOPT is not None and _MALLOPT(_M_MMAP_THRESHOLD, threshold) == 1


def freeze_startup_objects() -> None:
    """Keep the objects that exist once the exporter serves out of every later collection.

    A full collection of the cyclic garbage collector walks every object it tracks, in one
    step of the event loop. Serving 100 Miniservers of 1k controls, the process tracked about
    96k objects and a full collection took 50-64 ms on the benchmark VM (design 4: no step over
    50 ms); most of them were made by importing the stack (functions, classes and module dicts
    of trio, Quart, Hypercorn, cryptography) and live as long as the process. ``gc.freeze``
    moves what exists now into a generation that no collection walks; what is made later is
    collected as before. Garbage cycles that exist at this moment would be kept for good, so
    they are collected first (once, at start).
    """
    gc.collect()
    gc.freeze()


class TrimWhenQuiet:
    """Gives freed memory back once a burst of work has paused for ``quiet_seconds``.

    A burst (scrapes, floods of large tables) frees megabytes the C heap keeps. Trimming after
    every step would make the next one fault its pages in again; trimming once the burst
    pauses costs that once per burst. ``request`` after each step moves the deadline; one
    system task waits for it, and there is no task at all between bursts. ``busy`` (say, a
    render under way) puts the trim off to that work's own next ``request``.
    """

    def __init__(
        self,
        quiet_seconds: float,
        *,
        busy: Callable[[], bool] = lambda: False,
        release: Callable[[], None] = release_free_memory,
    ) -> None:
        self._quiet_seconds = quiet_seconds
        self._busy = busy
        self._release = release
        #: trio time of the pending trim; ``None`` when none is pending.
        self._at: float | None = None

    @property
    def pending(self) -> bool:
        return self._at is not None

    def request(self) -> bool:
        """A step of a burst ended: trim once none follows within ``quiet_seconds``. Whether
        this starts a burst (no trim was pending)."""
        starts = self._at is None
        self._at = trio.current_time() + self._quiet_seconds
        if starts:
            trio.lowlevel.spawn_system_task(self._trim_when_quiet, name="trim when quiet")
        return starts

    async def _trim_when_quiet(self) -> None:
        while True:
            deadline = self._at
            assert deadline is not None  # only this task clears it
            await trio.sleep_until(deadline)
            if self._at != deadline:
                continue  # another step ended meanwhile: wait for its deadline
            self._at = None
            if not self._busy():
                self._release()
            return
