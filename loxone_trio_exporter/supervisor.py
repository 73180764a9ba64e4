"""The supervisor: one nursery holding the connection tasks, the state owner and the web server.

Shape (design 2): each connection task sends to the state owner through its own clone of one
bounded memory channel; the web app reads the owner's immutable snapshots. A stop (``shutdown``
set by the signal task, or by a test) first lets Hypercorn finish within its graceful timeout,
then asks the connections to say goodbye (killing their tokens when ``kill_token_on_exit``) for
at most half a second, then cancels everything else: the exporter is down within a second.

Each connection task runs in a cancel scope of its own (``ConnectionRegistry``), so a config
reload (``Reloader``, given a ``ConfigSource``) can stop and start single Miniservers while the
others keep their sessions.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import logging
import os
import platform
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

import attrs
import trio

from . import __version__
from .config import Config, own_shard
from .logs import EXPORTER_LOGGER
from .runtime import (
    BuildInfo,
    ConfigSource,
    ConnectionRegistry,
    ExporterWebSource,
    LoggingSetup,
    Message,
    Reloader,
    ReloadResult,
    StateOwner,
    Timeouts,
    TokenStore,
    installation_uuid,
    series_limits,
)
from .web import create_app, serve_web

log = logging.getLogger(EXPORTER_LOGGER)

#: Messages the connection tasks may queue before they wait for the state owner.
CHANNEL_CAPACITY = 1024
#: How long a stop waits for the web server's own graceful shutdown before cancelling it.
WEB_STOP_SECONDS = 1.5
#: How long a stop lets the connections say goodbye (and kill their tokens when configured).
CONNECTIONS_STOP_SECONDS = 0.5


@attrs.frozen
class ExporterHandle:
    """What ``run_exporter`` reports once it serves: the bound URLs, the state owner, and the
    reload (``None`` when the exporter was not given a ``ConfigSource``)."""

    urls: tuple[str, ...]
    owner: StateOwner
    reload: Callable[[], Awaitable[ReloadResult]] | None = None


def build_info(revision: str | None = None, environ: Mapping[str, str] = os.environ) -> BuildInfo:
    """What ``loxone_exporter_build_info`` says. A container image sets ``LOXONE_BUILD_VERSION``,
    ``LOXONE_BUILD_REVISION`` and ``LOXONE_BUILD_DATE`` from its ``VERSION``, ``REVISION`` and
    ``BUILD_DATE`` build arguments; elsewhere the date is when the package was installed (built
    into the environment), from its metadata's file time."""
    return BuildInfo(
        version=environ.get("LOXONE_BUILD_VERSION") or __version__,
        revision=revision or environ.get("LOXONE_BUILD_REVISION") or "unknown",
        python=platform.python_version(),
        build_date=environ.get("LOXONE_BUILD_DATE") or _package_build_date(),
    )


def _package_build_date() -> str:
    try:
        metadata = importlib.metadata.distribution("loxone-trio-exporter")
        files = [f for f in metadata.files or () if f.name in ("METADATA", "PKG-INFO")]
        stamp = os.stat(str(metadata.locate_file(files[0]))).st_mtime if files else None
    except (importlib.metadata.PackageNotFoundError, OSError):
        stamp = None
    if stamp is None:
        return "unknown"
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).date().isoformat()


async def run_exporter(
    config: Config,
    shutdown: trio.Event,
    *,
    source: ConfigSource | None = None,
    setup_logging: LoggingSetup | None = None,
    timeouts: Timeouts | None = None,
    revision: str | None = None,
    task_status: trio.TaskStatus[ExporterHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the exporter for ``config`` until ``shutdown`` is set.

    With ``source`` (where ``config`` came from) the config can be reloaded: through the
    handle's ``reload`` and ``POST /-/reload``. ``setup_logging`` applies a reloaded ``[log]``
    table; without it, logging is left as it is.
    """
    config = own_shard(config)  # [shard]: only this instance's Miniservers (as load_config gives)
    owner = StateOwner(
        [miniserver.name for miniserver in config.miniservers],
        config.export,
        build_info=build_info(revision),
        max_series=series_limits(config),
    )
    installation = installation_uuid(config.state_dir)
    web_config = None
    if config.web.web_config_file:
        # Imported here: PyYAML and bcrypt are loaded only with a web config file.
        from .web import WebConfigSource  # noqa: PLC0415

        # Checked again here (``run`` checked it before starting): a ConfigError if it went bad.
        web_config = WebConfigSource(config.web.web_config_file)
    send_channel, receive_channel = trio.open_memory_channel[Message](CHANNEL_CAPACITY)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(owner.run, receive_channel)
        # The registry keeps ``send_channel`` open: reloads clone it for new connection tasks.
        registry = ConnectionRegistry(
            nursery,
            send_channel,
            owner,
            installation=installation,
            timeouts=timeouts,
            token_store=TokenStore(config.state_dir),
        )
        for miniserver in config.miniservers:
            registry.start(registry.prepare(miniserver))
        reloader = reload = None
        if source is not None:
            reloader = Reloader(
                source,
                config,
                nursery=nursery,
                registry=registry,
                owner=owner,
                setup_logging=setup_logging,
            )
            reload = reloader.reload

        def shard() -> tuple[int, int]:  # of the running config: a reload may change the count
            running = config if reloader is None else reloader.running
            return running.shard.index, running.shard.count

        extra_families = None
        if config.otlp is not None:
            # Imported here: the otlp extra's packages are loaded only with an [otlp] table.
            from .otlp import pusher_for  # noqa: PLC0415

            async def render_for_push() -> bytes | tuple[bytes, ...]:
                # No Accept header: text format 0.0.4; no Accept-Encoding: not compressed.
                return (await web_source.render_metrics(None, None, scrape=False)).body

            pusher = pusher_for(config.otlp, render_for_push, version=build_info(revision).version)
            nursery.start_soon(pusher.run)
            extra_families = pusher.families  # loxone_exporter_otlp_exports_total
        web_source = ExporterWebSource(owner, shard=shard, extra_families=extra_families)
        app = create_app(
            web_source,
            telemetry_path=config.web.telemetry_path,
            reload=reload,
            shard=shard,
            reconnect=registry.retry_now,
        )
        asgi_app: Any = app  # Quart's precise ASGI types; serve_web takes the same shape
        web_stopped = trio.Event()

        async def serve(task_status: trio.TaskStatus[list[str]]) -> None:
            try:
                await serve_web(
                    asgi_app,
                    list(config.web.listen),
                    shutdown,
                    web_config=web_config,
                    task_status=task_status,
                )
            finally:
                web_stopped.set()

        urls = await nursery.start(partial(serve))
        names = ", ".join(miniserver.name for miniserver in config.miniservers) or "none"
        log.info(
            "loxone-trio-exporter %s serving %s on %s for %d Miniserver(s) (%s); config from %s",
            build_info(revision).version,
            config.web.telemetry_path,
            ", ".join(urls),
            len(config.miniservers),
            names,
            "built in" if source is None else source.describe(),
            extra={"event": "serving"},
        )
        task_status.started(ExporterHandle(tuple(urls), owner, reload))
        await shutdown.wait()
        log.info("stopping")
        with trio.move_on_after(WEB_STOP_SECONDS):
            await web_stopped.wait()
        await registry.stop_all(within=CONNECTIONS_STOP_SECONDS)
        nursery.cancel_scope.cancel()
