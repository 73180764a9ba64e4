"""Tokens kept on disk, so a restart authenticates with ``authwithtoken`` instead of a new login.

One JSON file per Miniserver and user under ``state_dir/tokens/`` (directory 0700, files 0600),
written atomically (temporary file, then rename) so a crash never leaves half a token. The file
holds the token, ``validUntil`` (Loxone epoch), the ``hashAlg`` of the login and the client UUID
the token was issued to. A file that cannot be read is ignored with a warning: the exporter then
logs in with the password, which is always possible.

Nothing here logs the token itself.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path

from ..protocol import HashAlgorithm
from ..protocol._session import StoredToken

log = logging.getLogger(__name__)

TOKEN_DIRECTORY = "tokens"  # noqa: S105 - a directory name, not a secret
FORMAT_VERSION = 1


class TokenStore:
    """Reads and writes stored tokens; every failure is logged and survived."""

    def __init__(self, state_dir: str) -> None:
        self.directory = Path(state_dir) / TOKEN_DIRECTORY

    def __repr__(self) -> str:
        return f"<TokenStore {self.directory}>"

    def path(self, miniserver: str, user: str) -> Path:
        # Names may hold any character; a digest makes a safe, stable file name.
        digest = hashlib.sha256(f"{miniserver}\n{user}".encode()).hexdigest()[:24]
        return self.directory / f"{digest}.json"

    def load(self, miniserver: str, user: str, *, client_uuid: str) -> StoredToken | None:
        """The stored token for this Miniserver and user, if it was issued to ``client_uuid``."""
        path = self.path(miniserver, user)
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            if document.get("miniserver") != miniserver or document.get("user") != user:
                return None
            token = StoredToken(
                token=str(document["token"]),
                valid_until=int(document["valid_until"]),
                hash_algorithm=HashAlgorithm(document["hash_algorithm"]),
                client_uuid=str(document["client_uuid"]),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning(
                "miniserver %s: ignoring unreadable token file %s (%s)", miniserver, path, _why(exc)
            )
            return None
        if token.client_uuid != client_uuid:
            return None  # issued to another installation: logging in again is the honest way
        return token

    def save(self, miniserver: str, user: str, token: StoredToken) -> None:
        document = {
            "format": FORMAT_VERSION,
            "miniserver": miniserver,
            "user": user,
            "token": token.token,
            "valid_until": token.valid_until,
            "valid_until_unix": token.valid_until_unix,
            "hash_algorithm": token.hash_algorithm.value,
            "client_uuid": token.client_uuid,
        }
        path = self.path(miniserver, user)
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".token-")
            try:
                with os.fdopen(descriptor, "w", encoding="utf-8") as file:  # mkstemp: mode 0600
                    json.dump(document, file)
                os.replace(temporary, path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            log.warning(
                "miniserver %s: cannot store the token in %s (%s); the next start logs in again",
                miniserver,
                self.directory,
                _why(exc),
            )

    def forget(self, miniserver: str, user: str) -> None:
        try:
            self.path(miniserver, user).unlink(missing_ok=True)
        except OSError as exc:
            log.warning("miniserver %s: cannot remove its token file (%s)", miniserver, _why(exc))


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return type(exc).__name__
