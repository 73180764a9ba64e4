"""Small synthetic ``LoxAPP3.json`` documents, built in code, for the structure tests."""

from __future__ import annotations

import itertools
from typing import Any

_counter = itertools.count(1)

ROOM_UUID = "0f869a64-028d-0cc2-ffffd4c75dbaf53c"
CAT_UUID = "0f869a64-0200-0af4-ffffd4c75dbaf53c"


def uuid(n: int | None = None) -> str:
    """A distinct, valid Loxone UUID string (``8-4-4-16``)."""
    if n is None:
        n = next(_counter)
    return f"1{n:07x}-0000-0000-ffff{n:012x}"


def control(
    name: str = "Control",
    type_: str = "InfoOnlyAnalog",
    *,
    uuid_action: str | None = None,
    states: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A control object; ``extra`` adds keys verbatim (``room``, ``cat``, ``details`` ...)."""
    result: dict[str, Any] = {
        "name": name,
        "type": type_,
        "uuidAction": uuid_action or uuid(),
        "defaultRating": 0,
        "isSecured": False,
        "states": states if states is not None else {"value": uuid()},
    }
    result.update(extra)
    return result


def structure(*controls: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A whole document with one room and one category; ``extra`` replaces top-level keys."""
    result: dict[str, Any] = {
        "lastModified": "2025-01-02 03:04:05",
        "msInfo": {"serialNr": "504F94000000", "msName": "Test", "miniserverType": 2},
        "globalStates": {"operatingMode": uuid(), "sunrise": uuid()},
        "operatingModes": {"0": "Holiday", "-1": "Alarm"},
        "rooms": {ROOM_UUID: {"uuid": ROOM_UUID, "name": "Living room", "type": 1}},
        "cats": {CAT_UUID: {"uuid": CAT_UUID, "name": "Lights", "type": "lights"}},
        "controls": {c["uuidAction"]: c for c in controls},
    }
    result.update(extra)
    return result
