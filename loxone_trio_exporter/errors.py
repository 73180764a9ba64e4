"""The project's exception tree.

One root, ``LoxoneExporterError``, so callers at a boundary (the CLI, a connection task) can catch
everything the project raises on purpose and nothing else.
"""

from __future__ import annotations


class LoxoneExporterError(Exception):
    """Root of every error this package raises deliberately."""


class ConfigError(LoxoneExporterError):
    """The configuration is invalid; the message names the TOML path."""


class ProtocolError(LoxoneExporterError):
    """A protocol rule was broken, by us (local) or by the Miniserver (remote)."""


class LocalProtocolError(ProtocolError):
    """We tried to do something the protocol does not allow in the current state (a bug of ours)."""


class RemoteProtocolError(ProtocolError):
    """The Miniserver sent something we cannot accept.

    ``offset`` is the byte offset inside the offending message (or ``None`` when the problem is the
    order of messages rather than a position inside one).
    """

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        self.offset = offset
        if offset is not None:
            message = f"{message} (at byte offset {offset})"
        super().__init__(message)


class StructureError(LoxoneExporterError):
    """The structure file ``LoxAPP3.json`` is malformed; the message says where."""


class UnavailableError(LoxoneExporterError):
    """The Miniserver cannot be reached: refused, timed out, a TLS certificate not accepted.

    A session that ends for any reason raises ``runtime.SessionEnded``, also under the root,
    with the reason it is counted under.
    """
