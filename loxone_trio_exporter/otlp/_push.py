"""The push task: every interval, the series of ``/metrics`` go to the OTLP endpoint.

Each interval the pusher takes the current snapshot's text exposition (rendered in steps that
let other tasks run, like a scrape), encodes it in a worker thread (parsing and protobuf are the
heavy part) and POSTs it. Sessions and scrapes never wait for it: they share only the event
loop, and the pusher holds it for one render step at a time.

When the endpoint is down or slow, the export is retried with jittered backoff
(``backoff.reconnect_delay``) up to ``MAX_ATTEMPTS`` tries, and never past the next interval:
then that interval's fresh export replaces the unsent one. So at most one export exists at a
time (one body in memory), however long the outage. Each export ends as one of ``RESULTS``,
counted in ``loxone_exporter_otlp_exports_total{result}``:

- ``success``: the endpoint accepted it (2xx);
- ``failure``: the endpoint refused it for good (a 4xx other than 429), or every try failed;
- ``dropped``: still unsent when the next interval came, which replaced it.

An outage is logged twice: a warning when the first push fails, and a line when a push gets
through again; the tries in between are counted, not logged.
"""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping

import attrs
import trio

from ..backoff import reconnect_delay
from ..exposition import MetricFamily
from ..runtime import otlp_exports_family
from ._encode import EncodedExport, encode_export
from ._http import Endpoint, OpenStream, PushFailed, open_tcp, post_export

log = logging.getLogger("loxone_trio_exporter.otlp")

RESULTS = ("success", "failure", "dropped")
#: Tries of one export (the first and its retries).
MAX_ATTEMPTS = 5
#: Backoff between tries: 1-2 s, then 2-4 s, ... up to 15-30 s.
RETRY_BASE_SECONDS = 1.0
RETRY_CAP_SECONDS = 30.0

#: The text exposition of the current snapshot, whole or in segments (``MetricsBody.body``).
Collect = Callable[[], Awaitable[bytes | tuple[bytes, ...]]]


@attrs.frozen(kw_only=True)
class PushSettings:
    """What the pusher needs from ``[otlp]``. ``headers`` are secret: never logged."""

    endpoint: Endpoint
    headers: Mapping[str, str] = attrs.field(repr=False)
    interval_seconds: float
    timeout_seconds: float
    gzip: bool
    resource: Mapping[str, str]
    version: str


@attrs.frozen
class Outage:
    started: float  # trio clock
    undelivered: int = 0


class OtlpPusher:
    """Pushes ``collect()``'s series every ``interval_seconds``; ``run`` it in a nursery."""

    def __init__(
        self,
        settings: PushSettings,
        collect: Collect,
        *,
        open_stream: OpenStream = open_tcp,
        ssl_context: ssl.SSLContext | None = None,
        random_source: random.Random | None = None,
        encode_in_thread: bool = True,
    ) -> None:
        """``encode_in_thread=False`` encodes on the event loop: for tests on a virtual clock,
        which would jump ahead while the loop waits for a worker thread."""
        self._settings = settings
        self._collect = collect
        self._open_stream = open_stream
        if ssl_context is None and settings.endpoint.tls:
            # Once, here: loading the system's CA store takes milliseconds of the event loop.
            ssl_context = ssl.create_default_context()
        self._ssl_context = ssl_context
        self._random = random_source or random.Random()  # noqa: S311 - jitter, not secrets
        self._encode_in_thread = encode_in_thread
        self.counts: dict[str, int] = dict.fromkeys(RESULTS, 0)
        self.last_export: EncodedExport | None = None
        self._outage: Outage | None = None
        self._delivered_once = False
        self._start_unix_nano = time.time_ns()

    def families(self) -> list[MetricFamily]:
        """``loxone_exporter_otlp_exports_total``, for ``/metrics`` and the push itself."""
        return [otlp_exports_family(self.counts)]

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Push at every interval from now on, until cancelled."""
        interval = self._settings.interval_seconds
        self._start_unix_nano = time.time_ns()  # counters count from about now
        next_push = trio.current_time() + interval
        task_status.started()
        while True:
            await trio.sleep_until(next_push)
            # A push that overran its interval (a long timeout) moves the schedule, rather than
            # pushing twice in a row to catch up.
            next_push = max(next_push + interval, trio.current_time())
            await self.push_once(replaced_at=next_push)

    async def push_once(self, *, replaced_at: float) -> None:
        """One export: collect, encode, deliver with retries until ``replaced_at`` (trio clock)."""
        try:
            export = await self._encode(await self._collect())
        except Exception as exc:  # a bug of ours; the exporter keeps serving /metrics
            log.error("OTLP export could not be encoded: %s: %s", type(exc).__name__, exc)
            self.counts["failure"] += 1
            return
        self.last_export = export
        await self._deliver(export, replaced_at)

    async def _encode(self, body: bytes | tuple[bytes, ...]) -> EncodedExport:
        settings = self._settings

        def encode() -> EncodedExport:
            text = (body if isinstance(body, bytes) else b"".join(body)).decode("utf-8")
            return encode_export(
                text,
                settings.resource,
                scope_version=settings.version,
                time_unix_nano=time.time_ns(),
                start_time_unix_nano=self._start_unix_nano,
                gzip=settings.gzip,
            )

        if not self._encode_in_thread:
            return encode()
        # abandon_on_cancel: a stop need not wait for the encoding; its result is not wanted.
        return await trio.to_thread.run_sync(encode, abandon_on_cancel=True)

    async def _deliver(self, export: EncodedExport, replaced_at: float) -> None:
        settings = self._settings
        attempt = 0
        while True:
            try:
                await post_export(
                    settings.endpoint,
                    export.body,
                    gzipped=export.gzipped,
                    headers=settings.headers,
                    timeout_seconds=settings.timeout_seconds,
                    ssl_context=self._ssl_context,
                    open_stream=self._open_stream,
                )
            except PushFailed as exc:
                self._note_failure(exc)
                attempt += 1
                if not exc.retryable or attempt >= MAX_ATTEMPTS:
                    self._count_undelivered("failure")
                    return
                delay = reconnect_delay(
                    attempt - 1,
                    random_fraction=self._random.random(),
                    base=RETRY_BASE_SECONDS,
                    cap=RETRY_CAP_SECONDS,
                )
                if trio.current_time() + delay >= replaced_at:
                    self._count_undelivered("dropped")
                    return
                await trio.sleep(delay)
            else:
                self.counts["success"] += 1
                self._note_success(export)
                return

    def _count_undelivered(self, result: str) -> None:
        self.counts[result] += 1
        if self._outage is not None:
            self._outage = attrs.evolve(self._outage, undelivered=self._outage.undelivered + 1)

    def _note_failure(self, exc: PushFailed) -> None:
        if self._outage is not None:
            return  # logged when it started
        self._outage = Outage(trio.current_time())
        log.warning(
            "OTLP push to %s failed: %s; %s (logged again when a push gets through)",
            self._settings.endpoint.shown(),
            exc,
            "retrying with backoff" if exc.retryable else "the endpoint refused it",
        )

    def _note_success(self, export: EncodedExport) -> None:
        if self._outage is not None:
            log.info(
                "OTLP push to %s works again after %.0f s; %d export(s) were not delivered",
                self._settings.endpoint.shown(),
                trio.current_time() - self._outage.started,
                self._outage.undelivered,
            )
            self._outage = None
        elif not self._delivered_once:
            log.info(
                "OTLP push to %s: first export delivered (%d data points, %d bytes)",
                self._settings.endpoint.shown(),
                export.data_points,
                len(export.body),
            )
        self._delivered_once = True
