"""The client UUID this exporter sends with getjwt: the same across restarts.

A Miniserver keeps one token record per (user, client UUID); a new UUID at every start would
leave a trail of live tokens behind (protocol doc §4.2). The UUID is made once, stored in
``state_dir/client-uuid`` (mode 0600), and one per Miniserver and user is derived from it, so
two exporters on one host with different state directories still differ.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from pathlib import Path

from ..logs import CONFIG_LOGGER

log = logging.getLogger(CONFIG_LOGGER)

CLIENT_UUID_FILE = "client-uuid"


def installation_uuid(state_dir: str) -> uuid.UUID:
    """The UUID stored in ``state_dir`` (created on first use).

    When the directory cannot be written, a UUID derived from the host name is used instead
    (stable on this host, logged once as a warning): the exporter still runs.
    """
    path = Path(state_dir) / CLIENT_UUID_FILE
    try:
        return uuid.UUID(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as exc:
        log.warning("cannot read %s (%s); making a new client UUID", path, exc)
    made = uuid.uuid4()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(f"{made}\n")
    except OSError as exc:
        fallback = uuid.uuid5(uuid.NAMESPACE_DNS, f"loxone-trio-exporter.{socket.gethostname()}")
        log.warning(
            "cannot store the client UUID in %s (%s); using one derived from the host name. "
            "Set state_dir to a writable directory to keep it across hosts and containers.",
            path,
            exc.strerror or exc,
        )
        return fallback
    return made


def client_uuid(installation: uuid.UUID, miniserver: str, username: str) -> str:
    """The getjwt client UUID for one Miniserver and user of this installation."""
    return str(uuid.uuid5(installation, f"{miniserver}\n{username}"))
