"""Logging set-up: plain text lines or one JSON object per line, on standard error.

Secrets are kept out of log lines where they are made (no code logs a command, a password, a
token or a key). As a second line of defence the handler masks every configured password that
might still slip into a message or a traceback.
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from typing import TextIO

MASK = "<redacted>"
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Loggers by concern, so that operators filter on what a line is about, not on module paths.
SESSION_LOGGER = "loxone_trio_exporter.session"  # connections, logins, tokens, the wire
STATE_LOGGER = "loxone_trio_exporter.state"  # structures, values, what a Miniserver sent
WEB_LOGGER = "loxone_trio_exporter.web"  # the HTTP side: our own lines and Hypercorn's
CONFIG_LOGGER = "loxone_trio_exporter.config"  # config files, reloads, shards
EXPORTER_LOGGER = "loxone_trio_exporter"  # start and stop of the whole process

#: Fields a log call may add (``extra=``): JSON lines carry them, text lines end with them.
FIELDS = ("miniserver", "event", "reason", "next_try_seconds")

# Loggers that are far too chatty below these levels (hpack is a Hypercorn internal; Hypercorn's
# own lines, "Running on ...", repeat what the exporter's start line says).
_QUIET_LOGGERS = {"hpack": logging.WARNING, f"{WEB_LOGGER}.server": logging.WARNING}


class SecretMask(logging.Filter):
    """Replaces each of ``secrets`` in a record's final message (and traceback) by ``MASK``."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = _masking_order(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        masked = self._mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._mask(record.exc_text)
        return True

    def _mask(self, text: str) -> str:
        return _replace_all(text, self._secrets)


def mask_secrets(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` replaced by ``MASK``, as the log filter does it."""
    return _replace_all(text, _masking_order(secrets))


def _masking_order(secrets: Iterable[str]) -> list[str]:
    # Longest first, so a secret that contains another is masked whole; no empty ones.
    return sorted({secret for secret in secrets if secret}, key=len, reverse=True)


def _replace_all(text: str, ordered: Sequence[str]) -> str:
    for secret in ordered:
        text = text.replace(secret, MASK)
    return text


def _fields(record: logging.LogRecord) -> dict[str, object]:
    return {name: record.__dict__[name] for name in FIELDS if name in record.__dict__}


class TextFormatter(logging.Formatter):
    """``TEXT_FORMAT``, then the record's fields as ``key=value`` (for grep and eyes alike)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = _fields(record)
        if not fields:
            return line
        text = " ".join(f"{name}={value}" for name, value in fields.items())
        head, newline, rest = line.partition("\n")  # a traceback stays below the fields
        return f"{head} [{text}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the record's
    fields (``FIELDS``), exception."""

    def format(self, record: logging.LogRecord) -> str:
        moment = datetime.datetime.fromtimestamp(record.created, datetime.UTC)
        entry: dict[str, object] = {
            "time": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **_fields(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(
    level: str = "info",
    log_format: str = "text",
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the root logger's records at ``level`` and above to ``stream`` (standard error).

    Replaces handlers set by an earlier call (a reload may change level or format). Returns the
    handler, so a caller can remove it again.
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter())
    handler.addFilter(SecretMask(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, "_loxone_handler", False):
            root.removeHandler(old)
    handler._loxone_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name, quiet_level in _QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(quiet_level, root.level))
    return handler
