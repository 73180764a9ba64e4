"""The token of one Miniserver connection: what the next login uses, kept on disk, refreshed.

Lives as long as the connection task (across its reconnects), so a reconnect authenticates with
``authwithtoken``; the ``TokenStore`` carries it across restarts of the exporter.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..protocol._session import StoredToken, TokenAcquired, token_refresh_delay
from ._token_store import TokenStore

#: A token that expires within this many seconds is not worth trying: log in with the password.
MIN_REMAINING_SECONDS = 60.0
#: The shortest wait between two refreshes: a Miniserver that answers every refreshjwt with a
#: validUntil in the past would otherwise be asked again at once, in a loop without end.
MIN_REFRESH_INTERVAL_SECONDS = 30.0


class TokenKeeper:
    def __init__(
        self,
        miniserver: str,
        user: str,
        *,
        client_uuid: str,
        store: TokenStore | None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._miniserver = miniserver
        self._user = user
        self._client_uuid = client_uuid
        self._store = store
        self._wall_clock = wall_clock
        self._token: StoredToken | None = None
        self._loaded = store is None

    def __repr__(self) -> str:
        held = "a token" if self._token else "no token"
        return f"<TokenKeeper {self._miniserver!r} holding {held}>"

    def for_login(self) -> StoredToken | None:
        """The token to authenticate the next socket with, if there is a usable one."""
        if not self._loaded and self._store is not None:
            self._loaded = True
            self._token = self._store.load(
                self._miniserver, self._user, client_uuid=self._client_uuid
            )
        token = self._token
        if token is None or token.valid_until_unix < self._wall_clock() + MIN_REMAINING_SECONDS:
            return None
        return token

    @property
    def valid_until_unix(self) -> float | None:
        return None if self._token is None else float(self._token.valid_until_unix)

    def acquired(self, event: TokenAcquired) -> None:
        """A new token from getjwt or refreshjwt: use it from now on, and store it."""
        self._keep(event.stored())

    def confirmed(self, valid_until: int) -> None:
        """authwithtoken succeeded and says how long the token stays valid."""
        if self._token is not None and self._token.valid_until != valid_until:
            token = self._token
            self._keep(
                StoredToken(
                    token=token.token,
                    valid_until=valid_until,
                    hash_algorithm=token.hash_algorithm,
                    client_uuid=token.client_uuid,
                )
            )

    def forget(self) -> None:
        """The token was refused, killed or belongs to a changed user: never use it again."""
        self._token = None
        self._loaded = True
        if self._store is not None:
            self._store.forget(self._miniserver, self._user)

    def refresh_delay(self) -> float | None:
        """Seconds until the token should be refreshed (half its remaining life, at most a day)."""
        if self._token is None:
            return None
        return token_refresh_delay(
            self._token.valid_until_unix,
            self._wall_clock(),
            min_delay_seconds=MIN_REFRESH_INTERVAL_SECONDS,
        )

    def _keep(self, token: StoredToken) -> None:
        self._token = token
        self._loaded = True
        if self._store is not None:
            self._store.save(self._miniserver, self._user, token)
