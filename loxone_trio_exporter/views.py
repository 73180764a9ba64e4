"""What the web pages show and what they ask of the exporter: plain data, no web framework.

The runtime builds these and the web app reads them; keeping them here lets the runtime stay
free of Quart and Hypercorn (design 2: layers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import attrs


@attrs.frozen
class MetricsBody:
    """The answer to a scrape: the body, or its segments in order (a large body is sent as it
    is rendered, never joined whole: at 100 Miniservers the join alone is a 100 MB copy)."""

    body: bytes | tuple[bytes, ...]
    content_type: str
    gzipped: bool = False


@attrs.frozen
class MiniserverView:
    """What the pages show of one configured Miniserver."""

    name: str
    streaming: bool
    state: str  # e.g. "streaming", "connecting", "authentication failed: 401"
    firmware: str = ""
    series: int = 0
    last_event_unix: float | None = None


class WebSource(Protocol):
    """What the web side needs from the exporter."""

    async def render_metrics(
        self, accept: str | None, accept_encoding: str | None
    ) -> MetricsBody: ...

    def miniservers(self) -> Sequence[MiniserverView]: ...
