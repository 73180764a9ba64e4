"""Where the web side gets the current web config: a fixed one, or a file that is re-read.

The toolkit reads its file on every request; here the file and the files it names are looked at
(``os.stat``) at most once per ``check_interval_seconds``, and read again only when one of them
changed. A new version that does not pass ``load_web_config`` is logged once and the previous
one stays in force, so a half-written file never opens or closes the door by accident.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Protocol

import attrs

from ..errors import ConfigError
from ..logs import WEB_LOGGER
from ._web_config import WebConfigFile, load_web_config

log = logging.getLogger(WEB_LOGGER)

CHECK_INTERVAL_SECONDS = 1.0

#: What identifies one version of a file: inode (a rename over it), size and modification time.
FileStamp = tuple[str, int, int, int] | tuple[str, None, None, None]


class WebConfigProvider(Protocol):
    """Anything that can say which web config is in force right now (cheap; called per request)."""

    def current(self) -> WebConfigFile: ...


@attrs.frozen
class FixedWebConfig:
    """A web config that never changes."""

    config: WebConfigFile

    def current(self) -> WebConfigFile:
        return self.config


class WebConfigSource:
    """The web config file at ``path``, re-read when it or a file it names changes.

    Construction loads and checks the file (``ConfigError`` when it is invalid), so creating the
    source at start is the validation. Switching TLS on or off needs new listening sockets, so a
    new version that does is refused like an invalid one (the message says to restart).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        check_interval_seconds: float = CHECK_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = Path(path)
        self._check_interval_seconds = check_interval_seconds
        self._clock = clock
        self._config = load_web_config(self._path)
        self._stamps = _stamp_files(self._config.watched_files)
        self._next_check = clock() + check_interval_seconds
        self._failed_message: str | None = None

    @property
    def path(self) -> Path:
        return self._path

    def current(self) -> WebConfigFile:
        now = self._clock()
        if now >= self._next_check:
            self._next_check = now + self._check_interval_seconds
            self._reload_if_changed()
        return self._config

    def _reload_if_changed(self) -> None:
        stamps = _stamp_files(self._config.watched_files)
        # After a failure, keep trying each interval: the fix may be a file the old version
        # did not name, whose appearance the stamps above cannot see.
        if stamps == self._stamps and self._failed_message is None:
            return
        self._stamps = stamps
        try:
            config = load_web_config(self._path)
            if (config.tls is None) != (self._config.tls is None):
                raise ConfigError(
                    "tls_server_config: TLS cannot be switched on or off while running; "
                    "restart the exporter to apply this file"
                )
        except ConfigError as exc:
            self._report_failure(str(exc))
            return
        except Exception as exc:  # a bug must not take the web server down: keep serving
            message = f"unexpected {type(exc).__name__}"
            if message != self._failed_message:
                log.exception(
                    "reading web config file %s failed; keeping the previous one", self._path
                )
            self._failed_message = message
            return
        self._config = config
        self._stamps = _stamp_files(config.watched_files)
        self._failed_message = None
        log.info("web config file %s changed; now in force", self._path)

    def _report_failure(self, message: str) -> None:
        if message != self._failed_message:
            log.error(
                "web config file %s is not valid; keeping the previous one:\n%s",
                self._path,
                message,
            )
        self._failed_message = message


def _stamp_files(paths: Iterable[Path]) -> tuple[FileStamp, ...]:
    stamps: list[FileStamp] = []
    for path in paths:
        try:
            status = os.stat(path)
        except OSError:
            stamps.append((str(path), None, None, None))
        else:
            stamps.append((str(path), status.st_ino, status.st_size, status.st_mtime_ns))
    return tuple(stamps)
