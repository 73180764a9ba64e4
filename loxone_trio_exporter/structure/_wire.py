"""The JSON shape of ``LoxAPP3.json``, checked by a private cattrs converter.

These classes mirror the file (their attribute names are the JSON keys, so a cattrs error path is
a JSON path) and check only what the model is built from: the containers must be objects, names
and ``uuidAction`` must be strings. Anything else passes through as ``object`` and is read
leniently by ``_load``. Unknown keys are ignored: Loxone adds keys with every release.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.cols import is_mapping, mapping_structure_factory
from cattrs.gen import make_dict_structure_fn, override

from ..errors import StructureError
from ._model import MiniserverInfo

T = TypeVar("T")


class _WrongType(TypeError):
    """A JSON value of the wrong kind; the message is the one shown to the user."""

    def __init__(self, expected: str, value: object) -> None:
        super().__init__(f"expected {expected}, got {_json_kind(value)}")


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    kinds: tuple[tuple[type | tuple[type, ...], str], ...] = (
        (bool, "a boolean"),  # before int: a bool is an int to isinstance
        ((int, float), "a number"),
        (str, "a string"),
        ((list, tuple), "a list"),
        (Mapping, "an object"),
    )
    for types, kind in kinds:
        if isinstance(value, types):
            return kind
    return type(value).__name__


@attrs.frozen
class RawControl:
    name: str
    uuidAction: str
    type: str | None = None
    room: str | None = None
    cat: str | None = None
    states: dict[str, object] | None = None
    details: object = None
    subControls: dict[str, RawControl] | None = None


@attrs.frozen
class RawPlace:
    """A room or a category."""

    name: str | None = None
    type: object = None


@attrs.frozen
class RawWeatherServer:
    states: dict[str, object] | None = None
    format: dict[str, object] | None = None


@attrs.frozen
class RawStructure:
    lastModified: str | None = None
    msInfo: MiniserverInfo | None = None
    globalStates: dict[str, object] | None = None
    operatingModes: dict[str, object] | None = None
    rooms: dict[str, RawPlace] | None = None
    cats: dict[str, RawPlace] | None = None
    controls: dict[str, RawControl] | None = None
    weatherServer: RawWeatherServer | None = None


def _strict_str(value: object, _: object) -> str:
    # cattrs' default would call str() on anything, turning 5 into "5" and null into "None".
    if not isinstance(value, str):
        raise _WrongType("a string", value)
    return value


def _loose_str(value: object, _: object) -> str:
    return value if isinstance(value, str) else ""


#: msInfo's numbers are small enumerations (miniserverType 0-4, tempUnit 0-1, [DOC-SF] msInfo);
#: the bound leaves room for new values but keeps absurd ones (10**400) out of the model.
MAX_MS_INFO_NUMBER = 255


def _loose_small_int(value: object, _: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_MS_INFO_NUMBER:
        return value
    return None  # wrong type or out of range: read as absent, like any descriptive field


def _checked_mapping(hook: Callable[[Any, Any], T]) -> Callable[[Any, Any], T]:
    def structure(value: object, type_: object) -> T:
        if not isinstance(value, Mapping):
            raise _WrongType("an object", value)
        return hook(value, type_)

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(detailed_validation=True, forbid_extra_keys=False)
    converter.register_structure_hook(str, _strict_str)
    # ``object`` means "any JSON value, read later"; a predicate, because a class-based hook for
    # ``object`` would match every class through singledispatch.
    converter.register_structure_hook_func(lambda t: t is object, lambda value, _: value)
    converter.register_structure_hook_factory(
        is_mapping, lambda t: _checked_mapping(mapping_structure_factory(t, converter))
    )
    converter.register_structure_hook_factory(
        attrs.has, lambda t: _checked_mapping(make_dict_structure_fn(t, converter))
    )
    # msInfo is descriptive only: a field of the wrong type is read as absent, never an error.
    loose_ms_info = make_dict_structure_fn(
        MiniserverInfo,
        converter,
        serial_nr=override(rename="serialNr", struct_hook=_loose_str),
        ms_name=override(rename="msName", struct_hook=_loose_str),
        project_name=override(rename="projectName", struct_hook=_loose_str),
        local_url=override(rename="localUrl", struct_hook=_loose_str),
        remote_url=override(rename="remoteUrl", struct_hook=_loose_str),
        hostname=override(struct_hook=_loose_str),
        location=override(struct_hook=_loose_str),
        language_code=override(rename="languageCode", struct_hook=_loose_str),
        miniserver_type=override(rename="miniserverType", struct_hook=_loose_small_int),
        temp_unit=override(rename="tempUnit", struct_hook=_loose_small_int),
    )
    converter.register_structure_hook(MiniserverInfo, _checked_mapping(loose_ms_info))
    return converter


_CONVERTER = _make_converter()


def structure_raw(obj: object) -> RawStructure:
    """Check ``obj`` against the file's shape; ``StructureError`` names the JSON path(s)."""
    try:
        return _CONVERTER.structure(obj, RawStructure)
    except cattrs.BaseValidationError as exc:
        raise StructureError(f"structure file: {_summarise(_describe_errors(exc, ''))}") from exc
    except _WrongType as exc:
        raise StructureError(f"structure file: top level: {exc}") from exc


def _summarise(messages: list[str]) -> str:
    shown = "; ".join(messages[:3])
    if len(messages) > 3:
        shown += f" (and {len(messages) - 3} more)"
    return shown


def _describe_errors(exc: BaseException, path: str) -> list[str]:
    """``path: problem`` for each leaf of a cattrs error tree; paths like ``controls["x"].name``."""
    steps: list[tuple[BaseException, str]]
    without: list[Exception]
    if isinstance(exc, cattrs.IterableValidationError):
        in_items, without = exc.group_exceptions()
        steps = [(sub, f"{path}[{_key(note.index)}]") for sub, note in in_items]
    elif isinstance(exc, cattrs.ClassValidationError):
        in_fields, without = exc.group_exceptions()
        steps = [(sub, f"{path}.{note.name}" if path else note.name) for sub, note in in_fields]
    else:
        return [f"{path or 'top level'}: {_problem(exc)}"]
    messages: list[str] = []
    for sub, sub_path in steps:
        messages.extend(_describe_errors(sub, sub_path))
    messages.extend(f"{path or 'top level'}: {_problem(sub)}" for sub in without)
    return messages


def _key(index: object) -> str:
    if isinstance(index, str):
        return json.dumps(index, ensure_ascii=False)
    return repr(index)


def _problem(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return "required field missing"
    if isinstance(exc, _WrongType):
        return str(exc)
    return f"invalid value ({type(exc).__name__}: {exc})"
