"""``[otlp]`` + the state owner -> an ``OtlpPusher`` that pushes what ``/metrics`` serves."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from ..config import OtlpConfig
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


def pusher_for(
    config: OtlpConfig,
    render: Callable[[], Awaitable[bytes | tuple[bytes, ...]]],
    *,
    version: str,
) -> OtlpPusher:
    """A pusher of what ``render`` gives: the text exposition of the web source that serves
    ``/metrics`` (one renderer: a second one would keep a second copy of every series' text,
    about 100 MB at 100 Miniservers of 1k controls)."""
    return OtlpPusher(push_settings(config, version=version), render)
