"""LL replies: the JSON the Miniserver answers every command with.

Shape ([DOC] "Commands"; protocol doc §5.6)::

    {"LL": {"control": "<echo of the command>", "value": <string | object>, "Code": "200"}}

What varies between firmware versions and commands, and is accepted here:
- the status key is ``Code`` or ``code``, its value a string or a number;
- the ``control`` echo starts with ``dev/`` where the command said ``jdev/`` (or keeps ``jdev/``);
- ``value`` is a string, an object, or (``jdev/cfg/apiKey``) a string holding a JavaScript-style
  object with single quotes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import attrs

from ..errors import RemoteProtocolError
from ._checks import as_whole_number, describe, in_range, whole_number
from ._codes import ResponseCode

#: Loxone status codes are HTTP-like three-digit numbers (200 ... 901, protocol doc §4.5).
MAX_RESPONSE_CODE = 999


@attrs.frozen
class LLReply:
    """One decoded reply. ``extra`` keeps any other keys (``output0``, ... on some commands)."""

    control: str
    code: int
    value: object
    extra: Mapping[str, object] = attrs.field(factory=dict)

    @property
    def response_code(self) -> ResponseCode | None:
        """``code`` as a named ``ResponseCode``, or ``None`` for a code we have no name for."""
        try:
            return ResponseCode(self.code)
        except ValueError:
            return None

    @property
    def ok(self) -> bool:
        return self.code == ResponseCode.OK

    @property
    def command(self) -> str:
        """The echoed command in the ``jdev/`` spelling, so it compares equal to what we sent."""
        return normalize_command(self.control)

    def answers(self, command: str) -> bool:
        """Whether this reply echoes ``command`` (``dev/`` and ``jdev/`` spellings are equal)."""
        return self.command == normalize_command(command)


def normalize_command(command: str) -> str:
    """Spell a command or its echo one way: ``dev/...`` becomes ``jdev/...``."""
    if command.startswith("dev/"):
        return "j" + command
    return command


def parse_ll_reply(text: str | bytes) -> LLReply:
    """Parse an LL reply or raise ``RemoteProtocolError`` saying what is wrong."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        # ValueError covers JSONDecodeError and UnicodeDecodeError of bytes input.
        offset = exc.pos if isinstance(exc, json.JSONDecodeError) else None
        raise RemoteProtocolError(f"reply is not JSON: {_describe(exc)}", offset=offset) from None
    if not isinstance(document, dict) or not isinstance(document.get("LL"), dict):
        raise RemoteProtocolError('reply is not an object with an "LL" object inside')
    body: dict[str, Any] = document["LL"]
    control = body.get("control", "")
    if not isinstance(control, str):
        raise RemoteProtocolError(f"LL.control must be a string, got {type(control).__name__}")
    code = _parse_code(body)
    extra = {k: v for k, v in body.items() if k not in {"control", "value", "Code", "code"}}
    return LLReply(control=control, code=code, value=body.get("value"), extra=extra)


def try_parse_ll_reply(text: str | bytes) -> LLReply | None:
    """Like ``parse_ll_reply``, but ``None`` for text that is no LL reply (e.g. a fenc cipher)."""
    try:
        return parse_ll_reply(text)
    except RemoteProtocolError:
        return None


def _parse_code(body: Mapping[str, Any]) -> int:
    raw = body["Code"] if "Code" in body else body.get("code")
    if isinstance(raw, bool):  # bool is an int subclass; true/false is not a status code
        raise RemoteProtocolError(f"LL status code must be a number, got {raw!r}")
    code = as_whole_number(raw, integral_floats=True)
    if code is None:
        raise RemoteProtocolError(f"LL reply has no usable Code/code: {describe(raw)}")
    return in_range(code, "LL status code", low=0, high=MAX_RESPONSE_CODE)


def value_as_mapping(value: object) -> dict[str, Any]:
    """``LL.value`` as an object, whether it came as an object, JSON text or single-quoted text.

    Raises ``RemoteProtocolError`` when it is none of those.
    """
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        for candidate in (value, value.replace("'", '"'), value.replace('\\"', '"')):
            try:
                parsed = json.loads(candidate)
            except (ValueError, RecursionError):
                continue
            if isinstance(parsed, dict):
                return parsed
    raise RemoteProtocolError(f"LL.value is not an object: {value!r:.60}")


#: ``jdev/sps/LoxAPPversion3`` answers the structure's ``lastModified``, "2021-01-20 21:15:12".
MAX_STRUCTURE_VERSION_LENGTH = 64


def parse_structure_version(value: object) -> str:
    """The ``LL.value`` of ``jdev/sps/LoxAPPversion3``, without surrounding whitespace.

    Only its length and characters are checked, not the date format: the session compares it
    with the cached one, and a version that is no time simply has no timestamp metric. It goes
    into log lines and the cache, so it must be short and printable.
    """
    if not isinstance(value, str):
        raise RemoteProtocolError("LoxAPPversion3 reply: LL.value is not a string")
    version = value.strip()
    if len(version) > MAX_STRUCTURE_VERSION_LENGTH:
        raise RemoteProtocolError(
            f"LoxAPPversion3 reply: the version must have at most {MAX_STRUCTURE_VERSION_LENGTH} "
            f"characters, got {len(version)}"
        )
    if not version.isprintable():
        raise RemoteProtocolError(
            f"LoxAPPversion3 reply: the version must be printable text, got {describe(version)}"
        )
    return version


def encode_ll_reply(
    control: str,
    value: object,
    code: int = ResponseCode.OK,
    *,
    code_key: str = "Code",
    code_as_string: bool = True,
    extra: Mapping[str, object] | None = None,
) -> str:
    """Build a reply as a Miniserver would send it (used by the simulator and by tests)."""
    body: dict[str, object] = {"control": control, "value": value}
    body[code_key] = str(int(code)) if code_as_string else int(code)
    if extra:
        body.update(extra)
    return json.dumps({"LL": body}, ensure_ascii=False, separators=(",", ":"))


def _describe(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0][:120]


# --- jdev/cfg/apiKey --------------------------------------------------------------------------


@attrs.frozen
class ApiKeyInfo:
    """What the unauthenticated ``jdev/cfg/apiKey`` probe tells (protocol doc §1.2).

    ``https_status``: 1 = TLS available, 2 = certificate expired, ``None`` on Gen 1.
    """

    serial: str
    version: str
    https_status: int | None = None
    has_event_slots: bool | None = None
    local: bool | None = None


#: ``httpsStatus``, a small enumeration (1 = TLS available, 2 = certificate expired).
MAX_HTTPS_STATUS = 255
# The serial as apiKey writes it ("50:4F:94:10:B8:4A"); letters beyond hex occur in anonymised
# sample files. It becomes a DNS label of the CloudDNS name (§1.3), so it must be non-empty and
# short, of letters, digits and colons only.
_SERIAL = re.compile(r"[0-9A-Za-z:]{1,32}")
# A firmware version: dot-separated decimal numbers ("14.5.12.7"). Version checks compare them
# as integers; \d (Unicode decimal digits) is exactly what int() reads, unlike str.isdigit().
_VERSION = re.compile(r"\d{1,9}(?:\.\d{1,9}){0,7}")


def parse_api_key_value(value: object) -> ApiKeyInfo:
    """Decode the ``LL.value`` of ``jdev/cfg/apiKey``."""
    fields = value_as_mapping(value)
    serial = fields.get("snr", "")
    version = fields.get("version", "")
    if not isinstance(serial, str) or not isinstance(version, str):
        raise RemoteProtocolError("apiKey reply: snr and version must be strings")
    if not _SERIAL.fullmatch(serial):
        raise RemoteProtocolError(
            f"apiKey reply: snr must be 1 to 32 letters, digits or colons, got {describe(serial)}"
        )
    if version and not _VERSION.fullmatch(version):
        raise RemoteProtocolError(
            f"apiKey reply: version must be numbers separated by dots, got {describe(version)}"
        )
    return ApiKeyInfo(
        serial=serial,
        version=version,
        https_status=_optional_int(fields.get("httpsStatus"), "httpsStatus"),
        has_event_slots=_optional_bool(fields.get("hasEventSlots"), "hasEventSlots"),
        local=_optional_bool(fields.get("local"), "local"),
    )


def encode_api_key_value(info: ApiKeyInfo) -> str:
    """Write an apiKey value the way real Miniservers do: single-quoted pseudo-JSON."""
    parts = [f"'snr':'{info.serial}'"]
    if info.version:  # some old firmware leaves it to jdev/cfg/version
        parts.append(f"'version':'{info.version}'")
    if info.https_status is not None:
        parts.append(f"'httpsStatus':{info.https_status}")
    if info.has_event_slots is not None:
        parts.append(f"'hasEventSlots':{str(info.has_event_slots).lower()}")
    if info.local is not None:
        parts.append(f"'local':{str(info.local).lower()}")
    return "{" + ", ".join(parts) + "}"


def _optional_int(raw: object, name: str) -> int | None:
    if raw is None:
        return None
    return whole_number(raw, f"apiKey reply: {name}", low=0, high=MAX_HTTPS_STATUS)


def _optional_bool(raw: object, name: str) -> bool | None:
    if raw is None or isinstance(raw, bool):
        return raw
    if raw in ("true", "false", 0, 1):
        return raw in ("true", 1)
    raise RemoteProtocolError(f"apiKey reply: {name} must be true or false, got {describe(raw)}")
