"""Faults on demand: what ``POST /sim/fault`` accepts, validated before anything happens."""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import TypeVar

import attrs

from ..protocol import CloseCode
from ._flood import DEFAULT_FLOOD_BYTES, FLOOD_TABLES, MAX_FLOOD_BYTES


class FaultKind(enum.StrEnum):
    """Every fault the simulator can inject (see the README for what each one does)."""

    DROP = "drop"  # cut every WebSocket without a close frame
    OUT_OF_SERVICE = "out_of_service"  # header id 5, then close
    CLOSE = "close"  # close every WebSocket with ``code``
    GARBAGE = "garbage"  # a malformed binary message to every client
    STALL = "stall"  # stop answering keepalives and stop sending, for ``seconds``
    AUTH_FAIL = "auth_fail"  # the next ``count`` logins get 401
    TOKEN_EXPIRE = "token_expire"  # noqa: S105 - every issued token becomes invalid
    STRUCTURE_CHANGE = "structure_change"  # new lastModified, a control added/removed/renamed
    BOOT = "boot"  # HTTP 503 and WebSocket refused for ``seconds``; open sessions are cut
    TABLES_BEFORE_ACK = "tables_before_ack"  # quirk: tables before the enable reply
    ESTIMATED_HEADERS = "estimated_headers"  # quirk: estimated header before the structure file
    FLOOD = "flood"  # ``table`` tables of ``size`` bytes, new UUIDs, for ``seconds``
    CLEAR = "clear"  # end a stall, a boot or a flood early


CLOSE_CODES = frozenset(
    {
        CloseCode.NORMAL,
        CloseCode.BLOCKED,
        CloseCode.SOME_USER_CHANGED,
        CloseCode.CURRENT_USER_CHANGED,
        CloseCode.USER_DISABLED,
        CloseCode.UPDATE_IN_PROGRESS,
        CloseCode.NO_EVENT_SLOTS,
    }
)
DEFAULT_BLOCKED_SECONDS = 300
DEFAULT_STALL_SECONDS = 3600.0
DEFAULT_BOOT_SECONDS = 10.0
DEFAULT_FLOOD_SECONDS = 60.0


_N = TypeVar("_N", int, float)


class FaultError(ValueError):
    """The fault request is invalid; the message says what to send instead."""


@attrs.frozen
class Fault:
    kind: FaultKind
    code: int = CloseCode.NORMAL
    seconds: float = 0.0
    count: int = 1
    enabled: bool = True
    table: str = "value"  # flood: "value" or "text"
    size: int = DEFAULT_FLOOD_BYTES  # flood: bytes per table


def parse_fault(document: object) -> Fault:
    """Validate a ``POST /sim/fault`` body such as ``{"kind": "close", "code": 4003}``."""
    if not isinstance(document, Mapping):
        raise FaultError('send a JSON object such as {"kind": "drop"}')
    raw_kind = document.get("kind")
    try:
        kind = FaultKind(str(raw_kind))
    except ValueError:
        known = ", ".join(k.value for k in FaultKind)
        raise FaultError(f"unknown fault kind {raw_kind!r}; known kinds: {known}") from None
    parse_options = _OPTION_PARSERS.get(kind)
    if parse_options is not None:
        return parse_options(document)
    if kind is FaultKind.STALL:
        return Fault(kind, seconds=_number(document, "seconds", float, DEFAULT_STALL_SECONDS))
    if kind is FaultKind.BOOT:
        return Fault(kind, seconds=_number(document, "seconds", float, DEFAULT_BOOT_SECONDS))
    if kind is FaultKind.AUTH_FAIL:
        return Fault(kind, count=_number(document, "count", int, 1))
    if kind in (FaultKind.TABLES_BEFORE_ACK, FaultKind.ESTIMATED_HEADERS):
        enabled = document.get("enabled", True)
        if not isinstance(enabled, bool):
            raise FaultError(f'"enabled" must be true or false, got {enabled!r}')
        return Fault(kind, enabled=enabled)
    return Fault(kind)


def _close(document: Mapping[str, object]) -> Fault:
    code = _number(document, "code", int, CloseCode.NORMAL)
    if code not in CLOSE_CODES:
        allowed = ", ".join(str(int(c)) for c in sorted(CLOSE_CODES))
        raise FaultError(f"close code {code} is not one a Miniserver uses; use {allowed}")
    default_seconds = DEFAULT_BLOCKED_SECONDS if code == CloseCode.BLOCKED else 0
    seconds = _number(document, "seconds", int, default_seconds)
    return Fault(FaultKind.CLOSE, code=code, seconds=seconds)


def _flood(document: Mapping[str, object]) -> Fault:
    table = document.get("table", "value")
    if table not in FLOOD_TABLES:
        raise FaultError(f'"table" must be one of {", ".join(FLOOD_TABLES)}, got {table!r}')
    size = _number(document, "size", int, DEFAULT_FLOOD_BYTES)
    if not 24 <= size <= MAX_FLOOD_BYTES:
        raise FaultError(f'"size" must be 24 to {MAX_FLOOD_BYTES} bytes, got {size}')
    seconds = _number(document, "seconds", float, DEFAULT_FLOOD_SECONDS)
    return Fault(FaultKind.FLOOD, seconds=seconds, table=str(table), size=size)


_OPTION_PARSERS: dict[FaultKind, Callable[[Mapping[str, object]], Fault]] = {
    FaultKind.CLOSE: _close,
    FaultKind.FLOOD: _flood,
}


def _number(document: Mapping[str, object], key: str, kind: type[_N], default: _N) -> _N:
    value = document.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f'"{key}" must be a number, got {value!r}')
    if value < 0 or (kind is int and not float(value).is_integer()):
        raise FaultError(f'"{key}" must be a non-negative {kind.__name__}, got {value!r}')
    return kind(value)
