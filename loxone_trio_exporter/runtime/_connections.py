"""The running connection tasks, one per Miniserver name, each in a cancel scope of its own.

The supervisor starts them in its nursery; a config reload stops some of them alone (a removed
Miniserver, or one whose settings changed) while the others keep their sessions.
"""

from __future__ import annotations

import logging
import uuid

import attrs
import trio

from ..config import MiniserverConfig
from ..logs import SESSION_LOGGER
from ._connection import MiniserverConnection, Timeouts
from ._identity import client_uuid
from ._messages import ConnectionRemoved, Message
from ._owner import StateOwner
from ._token_store import TokenStore

log = logging.getLogger(SESSION_LOGGER)

#: How long a connection that was asked to stop may take to say goodbye before it is cancelled.
STOP_GRACE_SECONDS = 1.0


@attrs.frozen
class PreparedConnection:
    """A connection task built for ``config`` and not started yet."""

    config: MiniserverConfig
    connection: MiniserverConnection
    send_channel: trio.MemorySendChannel[Message]  # the connection's clone


@attrs.frozen
class _Running:
    config: MiniserverConfig
    connection: MiniserverConnection
    scope: trio.CancelScope
    stopped: trio.Event


class ConnectionRegistry:
    """Starts and stops ``MiniserverConnection`` tasks by name, and tells the state owner.

    ``send_channel`` is kept open for as long as the registry lives: every new task gets a clone
    of it, and removals are announced through it.
    """

    def __init__(
        self,
        nursery: trio.Nursery,
        send_channel: trio.MemorySendChannel[Message],
        owner: StateOwner,
        *,
        installation: uuid.UUID,
        timeouts: Timeouts | None = None,
        token_store: TokenStore | None = None,
    ) -> None:
        self._nursery = nursery
        self._token_store = token_store
        self._send_channel = send_channel
        self._owner = owner
        self._installation = installation
        self._timeouts = timeouts
        self._running: dict[str, _Running] = {}
        owner.restart_session = self._restart_session

    def _restart_session(self, name: str, detail: str) -> bool:
        running = self._running.get(name)
        return running is not None and running.connection.restart_session(detail)

    def retry_now(self, name: str | None = None) -> tuple[str, ...] | None:
        """End the wait for the next try of ``name`` (all Miniservers: ``None``); the names
        that were waiting. ``None`` when ``name`` runs no connection here."""
        if name is not None and name not in self._running:
            return None
        names = [name] if name is not None else sorted(self._running)
        return tuple(n for n in names if self._running[n].connection.retry_now())

    def prepare(self, config: MiniserverConfig) -> PreparedConnection:
        """Build the connection task of ``config`` without starting it.

        Raises what the settings themselves cause (an unreadable ``tls_ca_file``, say), so a
        reload can refuse a config before it changes anything. Give the result to ``start``
        or ``discard``.
        """
        send_channel = self._send_channel.clone()
        try:
            connection = MiniserverConnection(
                config,
                send_channel,
                client_uuid=client_uuid(self._installation, config.name, config.username),
                timeouts=self._timeouts,
                token_store=self._token_store,
            )
        except BaseException:
            send_channel.close()
            raise
        return PreparedConnection(config, connection, send_channel)

    @staticmethod
    def discard(prepared: PreparedConnection) -> None:
        prepared.send_channel.close()

    def start(self, prepared: PreparedConnection) -> None:
        """Start a prepared connection task (the owner must know the name already)."""
        name = prepared.config.name
        if name in self._running:
            raise ValueError(f"miniserver {name!r} already has a connection task")
        running = _Running(prepared.config, prepared.connection, trio.CancelScope(), trio.Event())
        self._running[name] = running
        self._nursery.start_soon(self._run, prepared.connection, running, name=f"miniserver {name}")

    @staticmethod
    async def _run(connection: MiniserverConnection, running: _Running) -> None:
        try:
            with running.scope:
                await connection.run()
        finally:
            running.stopped.set()

    async def stop(self, name: str) -> None:
        """Stop the task of ``name``, then drop the Miniserver's state and series at the owner.

        The connection is asked to finish first (a goodbye to the Miniserver, and its token
        killed with ``kill_token_on_exit``); if it has not within ``STOP_GRACE_SECONDS``, it is
        cancelled. Returns once the owner has applied the removal.
        """
        running = self._running.pop(name)
        running.connection.stop()
        with trio.move_on_after(STOP_GRACE_SECONDS):
            await running.stopped.wait()
        running.scope.cancel()
        await running.stopped.wait()
        applied = self._owner.removal_applied(name)
        # Through the channel, behind every message the stopped task sent (see
        # ``StateOwner.removal_applied``); a direct call could be overtaken by those.
        await self._send_channel.send(ConnectionRemoved(name))
        await applied.wait()
        log.info("miniserver %s: stopped", name)

    async def stop_all(self, within: float) -> None:
        """Ask every connection to finish (goodbye, and ``kill_token_on_exit``), and wait at
        most ``within`` seconds for them; the caller cancels what is left (process exit)."""
        running = list(self._running.values())
        for task in running:
            task.connection.stop()
        with trio.move_on_after(within):
            for task in running:
                await task.stopped.wait()
