"""The supervisor: one nursery holding the connection tasks, the state owner and the web server.

Shape (design 2): each connection task sends to the state owner through its own clone of one
bounded memory channel; the web app reads the owner's immutable snapshots. A stop (``shutdown``
set by the signal task, or by a test) first lets Hypercorn finish within its graceful timeout,
then cancels everything else: the whole exporter is down well within a second.
"""

from __future__ import annotations

import logging
import platform
from functools import partial
from typing import Any

import attrs
import trio

from . import __version__
from .config import Config
from .runtime._connection import MiniserverConnection, Timeouts
from .runtime._identity import client_uuid, installation_uuid
from .runtime._messages import Message
from .runtime._owner import BuildInfo, StateOwner
from .runtime._web_source import ExporterWebSource
from .web import create_app, serve_web

log = logging.getLogger(__name__)

#: Messages the connection tasks may queue before they wait for the state owner.
CHANNEL_CAPACITY = 1024
#: How long a stop waits for the web server's own graceful shutdown before cancelling it.
WEB_STOP_SECONDS = 1.5


@attrs.frozen
class ExporterHandle:
    """What ``run_exporter`` reports once it serves: the bound URLs and the state owner."""

    urls: tuple[str, ...]
    owner: StateOwner


def build_info(revision: str = "unknown") -> BuildInfo:
    return BuildInfo(version=__version__, revision=revision, python=platform.python_version())


async def run_exporter(
    config: Config,
    shutdown: trio.Event,
    *,
    timeouts: Timeouts | None = None,
    revision: str = "unknown",
    task_status: trio.TaskStatus[ExporterHandle] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the exporter for ``config`` until ``shutdown`` is set."""
    owner = StateOwner(
        [miniserver.name for miniserver in config.miniservers],
        config.export,
        build_info=build_info(revision),
    )
    installation = installation_uuid(config.state_dir)
    send_channel, receive_channel = trio.open_memory_channel[Message](CHANNEL_CAPACITY)
    app = create_app(ExporterWebSource(owner), telemetry_path=config.web.telemetry_path)
    asgi_app: Any = app  # Quart's precise ASGI types; serve_web takes the same shape
    async with trio.open_nursery() as nursery:
        nursery.start_soon(owner.run, receive_channel)
        async with send_channel:
            for miniserver in config.miniservers:
                connection = MiniserverConnection(
                    miniserver,
                    send_channel.clone(),
                    client_uuid=client_uuid(installation, miniserver.name, miniserver.username),
                    timeouts=timeouts,
                )
                nursery.start_soon(connection.run, name=f"miniserver {miniserver.name}")
        web_stopped = trio.Event()

        async def serve(task_status: trio.TaskStatus[list[str]]) -> None:
            try:
                await serve_web(
                    asgi_app, list(config.web.listen), shutdown, task_status=task_status
                )
            finally:
                web_stopped.set()

        urls = await nursery.start(partial(serve))
        log.info(
            "serving %s on %s for %d miniserver(s)",
            config.web.telemetry_path,
            ", ".join(urls),
            len(config.miniservers),
        )
        task_status.started(ExporterHandle(tuple(urls), owner))
        await shutdown.wait()
        log.info("stopping")
        with trio.move_on_after(WEB_STOP_SECONDS):
            await web_stopped.wait()
        nursery.cancel_scope.cancel()
