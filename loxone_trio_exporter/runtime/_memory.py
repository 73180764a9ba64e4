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
