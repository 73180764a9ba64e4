"""Hypercorn wiring for the web app, inside the caller's nursery (stack notes: "Wiring")."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from functools import partial
from typing import Any

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

KEEP_ALIVE_TIMEOUT_SECONDS = 5.0
GRACEFUL_TIMEOUT_SECONDS = 1.0


def shield_sends(app: AsgiApp) -> AsgiApp:
    """Run every ASGI ``send`` shielded from cancellation.

    Quart-Trio cancels its per-request nursery on ``http.disconnect``, which Hypercorn delivers
    from inside the app's last ``send``; unshielded, that cancels the send itself and the idle
    keep-alive connection is never closed, so every shutdown waits for the full graceful timeout
    while a Prometheus server holds a connection (stack notes, pitfall 1).
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        async def shielded_send(message: Message) -> None:
            with trio.CancelScope(shield=True):
                await send(message)

        await app(scope, receive, shielded_send)

    return wrapped


def hypercorn_config(listen: list[str]) -> HypercornConfig:
    config = HypercornConfig()
    config.bind = list(listen)
    config.keep_alive_timeout = KEEP_ALIVE_TIMEOUT_SECONDS
    config.graceful_timeout = GRACEFUL_TIMEOUT_SECONDS
    config.accesslog = None
    # The default error logger prints every line twice once logging is configured.
    config.errorlog = logging.getLogger("hypercorn.error")
    return config


async def serve_web(
    app: AsgiApp,
    listen: list[str],
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on every ``listen`` address until ``shutdown`` is set.

    ``task_status`` receives the bound URLs (with real ports when 0 was asked for).
    """
    config = hypercorn_config(listen)
    asgi_app: Any = shield_sends(app)  # hypercorn's precise ASGI types; ours is the same shape
    serve_app = partial(serve, asgi_app, config, shutdown_trigger=shutdown.wait)
    async with trio.open_nursery() as nursery:
        bound = await nursery.start(serve_app)
        task_status.started(list(bound))
