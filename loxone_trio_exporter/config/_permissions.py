"""Warnings about secrets that other users of the machine can read.

A config file that holds a ``password`` (or a ``password_file``) readable by the group or by
everyone gives that password to every local account; ``chmod 600`` fixes it. These are warnings,
not errors: container secrets are often mounted 0444 inside a single-user container.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ._model import Config

_READABLE_BY_OTHERS = stat.S_IRGRP | stat.S_IROTH


def permission_warnings(config_file: Path | None, config: Config) -> list[str]:
    """One sentence per secret-holding file that is readable beyond its owner."""
    warnings: list[str] = []
    if config_file is not None and any(
        miniserver.password and not miniserver.password_file for miniserver in config.miniservers
    ):
        warning = _warning(config_file, "holds a password")
        if warning:
            warnings.append(warning)
    for miniserver in config.miniservers:
        if miniserver.password_file:
            warning = _warning(Path(miniserver.password_file), "is a password file")
            if warning:
                warnings.append(warning)
    return warnings


def _warning(path: Path, what: str) -> str | None:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # the loader reports unreadable files; nothing to add here
    if not mode & _READABLE_BY_OTHERS:
        return None
    return (
        f"{path} {what} and other users can read it (mode {stat.S_IMODE(mode):03o}); "
        f"restrict it with: chmod 600 {path}"
    )
