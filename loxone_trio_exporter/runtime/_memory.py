"""Giving freed memory back to the operating system (glibc's ``malloc_trim``).

Large temporaries (a structure file's text and its JSON tree, parsed in a worker thread; a
scrape's body) are freed in the C heap but glibc keeps the pages: in the worker thread's own
arena, and in the main heap wherever a long-lived block sits above them. ``malloc_trim(0)``
hands every free page back (all arenas, the middle of the heap too). Where glibc is missing
(musl, macOS) this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable


def _find_malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


_MALLOC_TRIM = _find_malloc_trim()


def release_free_memory() -> None:
    """Return the C heap's free pages to the operating system (see module doc)."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


#: glibc's ``mallopt`` parameter for the size from which a block gets pages of its own (mmap).
_M_MMAP_THRESHOLD = -3
#: Blocks from this size up are mapped on their own and unmapped when freed.
LARGE_BLOCK_BYTES = 1024 * 1024


def _find_mallopt() -> Callable[[int, int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        mallopt: Callable[[int, int], int] = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    return mallopt


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
    mallopt = _find_mallopt()
    return mallopt is not None and mallopt(_M_MMAP_THRESHOLD, threshold) == 1
