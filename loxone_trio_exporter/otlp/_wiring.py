"""``[otlp]`` + the state owner -> an ``OtlpPusher`` that pushes what ``/metrics`` serves."""

from __future__ import annotations

from ..config import OtlpConfig
from ..runtime import ExporterWebSource, StateOwner
from ._http import Endpoint
from ._push import OtlpPusher, PushSettings


def push_settings(config: OtlpConfig, *, version: str) -> PushSettings:
    """The resource names the exporter (``service.*``); the Miniservers are in the labels."""
    return PushSettings(
        endpoint=Endpoint.from_url(config.endpoint),
        headers=dict(config.headers),
        interval_seconds=config.interval_seconds,
        timeout_seconds=config.timeout_seconds,
        gzip=config.compression == "gzip",
        resource={
            "service.name": config.service_name,
            "service.instance.id": config.service_instance_id,
            "service.version": version,
        },
        version=version,
    )


def pusher_for(config: OtlpConfig, owner: StateOwner, *, version: str) -> OtlpPusher:
    """A pusher over a web source of its own: the same families as ``/metrics`` (the push
    counter included), rendered by a second renderer, so a push never waits for a scrape's
    render lock and its caches do not disturb the scrape's."""

    async def collect() -> bytes | tuple[bytes, ...]:
        # No Accept header: text format 0.0.4; no Accept-Encoding: not compressed.
        return (await source.render_metrics(None, None)).body

    pusher = OtlpPusher(push_settings(config, version=version), collect)
    source = ExporterWebSource(owner, extra_families=pusher.families)
    return pusher
