"""Which instance runs which Miniserver when one config is shared by several (``[shard]``).

Rendezvous hashing (highest random weight): every Miniserver gives each shard index a weight, a
stable hash of its ``name`` and the index, and goes to the index with the highest weight. Every
instance computes the same answer from the config alone, with nothing to coordinate, and going
from ``count`` to ``count + 1`` shards moves only the Miniservers whose new index outweighs their
old one: about ``1 / (count + 1)`` of them, all to the new shard; the others stay where they are.

The hash is BLAKE2b, the same on every machine and every run (Python's ``hash()`` of a string
changes per process). Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def shard_weight(name: str, index: int) -> int:
    """The weight of shard ``index`` for the Miniserver ``name``: 64 bits of BLAKE2b."""
    # "INDEX/NAME": the index has no "/", so no two (index, name) pairs share a key.
    key = f"{index}/{name}".encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big")


def shard_of(name: str, count: int) -> int:
    """The index, ``0 <= index < count``, of the shard that runs the Miniserver ``name``."""
    if count < 1:
        raise ValueError(f"the shard count must be at least 1, got {count}")
    # A tie (two equal 64-bit weights) goes to the lower index, so the answer is total.
    return max(range(count), key=lambda index: (shard_weight(name, index), -index))


def assign(names: Iterable[str], count: int) -> tuple[tuple[str, ...], ...]:
    """The names of each shard, index by index, each in the order given."""
    shards: list[list[str]] = [[] for _ in range(count)]
    for name in names:
        shards[shard_of(name, count)].append(name)
    return tuple(tuple(names_of_shard) for names_of_shard in shards)
