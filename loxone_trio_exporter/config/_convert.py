"""The private cattrs converter that turns parsed TOML into the model, and its error paths.

Strict on purpose: no value changes type on the way in (cattrs' defaults would turn ``80`` into
``"80"`` for a string field, ``"80"`` into ``80`` for an int and a string into a tuple of letters),
unknown keys are errors, and every problem is collected, not just the first. Errors come out as
``(path, problem)`` pairs with TOML paths such as ``miniserver[1].port``.
"""

from __future__ import annotations

import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.errors import (
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn, override

from ._model import CHECK, ITEM_CHECK, REDACT, TOML_KEY, Check, Config, InvalidValue, show_value

T = TypeVar("T")
Hook = Callable[[Any, Any], Any]
#: ``(path, problem)``; the path is empty for the top level.
Problem = tuple[str, str]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
MISSING = "required, but not given"


class WrongType(TypeError):
    """A value of the wrong TOML type; the value is kept so the message can show it (or not)."""

    def __init__(self, expected: str, value: object) -> None:
        super().__init__(f"expected {expected}")
        self.expected = expected
        self.value = value


def _strict(expected: str, accepts: Callable[[object], bool]) -> Hook:
    def structure(value: object, _type: object) -> object:
        if not accepts(value):
            raise WrongType(expected, value)
        return value

    return structure


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _structure_float(value: object, _type: object) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise WrongType("number", value)
    return float(value)


def _is_literal(type_: object) -> bool:
    return typing.get_origin(type_) is typing.Literal


def _structure_choice(value: object, type_: object) -> object:
    choices = typing.get_args(type_)
    if not isinstance(value, str):
        raise WrongType("string", value)
    if value not in choices:
        shown = ", ".join(json.dumps(choice) for choice in choices)
        raise InvalidValue(f"expected one of {shown}, got {show_value(value)}")
    return value


def _is_homogeneous_tuple(type_: object) -> bool:
    args = typing.get_args(type_)
    return typing.get_origin(type_) is tuple and len(args) == 2 and args[1] is Ellipsis


def _sequence_hook(item_hook: Hook, item_type: object) -> Hook:
    """TOML arrays only (a string is not a sequence of letters here); errors keep their index."""

    def structure(value: object, type_: object) -> tuple[Any, ...]:
        if not isinstance(value, list):
            raise WrongType("array", value)
        items: list[Any] = []
        errors: list[Exception] = []
        for index, item in enumerate(value):
            try:
                items.append(item_hook(item, item_type))
            except Exception as exc:  # collected and reported with its index
                exc.add_note(IterableValidationNote(f"@ index {index}", index, item_type))
                errors.append(exc)
        if errors:
            raise IterableValidationError(f"While structuring {type_!r}", errors, tuple)
        return tuple(items)

    return structure


def _structure_string_table(value: object, _type: object) -> dict[str, str]:
    """A TOML table of strings (``[otlp.headers]``). Its values may be secrets: a message names
    the key and shows a wrong value by its kind only."""
    if not isinstance(value, Mapping):
        raise WrongType("table", value)
    for key, item in value.items():
        if not isinstance(item, str):
            raise InvalidValue(f"{key}: expected string, got {show_value(item, secret=True)}")
    return dict(value)


def _checked(hook: Hook, check: Check) -> Hook:
    def structure(value: object, type_: object) -> object:
        result = hook(value, type_)
        check(result)
        return result

    return structure


def _class_hook(converter: cattrs.Converter, cls: type[Any]) -> Hook:
    """Structure an attrs class from a TOML table, running each field's checks from metadata."""
    attrs.resolve_types(cls)
    overrides: dict[str, Any] = {}
    for field in attrs.fields(cls):
        hook: Hook = converter.get_structure_hook(field.type)
        if (item_check := field.metadata.get(ITEM_CHECK)) is not None:
            item_type = typing.get_args(field.type)[0]
            item_hook = _checked(converter.get_structure_hook(item_type), item_check)
            hook = _sequence_hook(item_hook, item_type)
        if (check := field.metadata.get(CHECK)) is not None:
            hook = _checked(hook, check)
        overrides[field.name] = override(rename=field.metadata.get(TOML_KEY), struct_hook=hook)
    structure_fields = make_dict_structure_fn(cls, converter, **overrides)

    def structure(value: object, type_: object) -> object:
        if not isinstance(value, Mapping):
            raise WrongType("table", value)
        return structure_fields(value, type_)

    return structure


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(str, _strict("string", lambda v: isinstance(v, str)))
    converter.register_structure_hook(bool, _strict("bool", lambda v: isinstance(v, bool)))
    converter.register_structure_hook(int, _strict("int", _is_int))
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook_func(_is_literal, _structure_choice)
    converter.register_structure_hook_func(lambda t: t == dict[str, str], _structure_string_table)
    converter.register_structure_hook_factory(
        _is_homogeneous_tuple,
        lambda t: _sequence_hook(
            converter.get_structure_hook(typing.get_args(t)[0]), typing.get_args(t)[0]
        ),
    )
    converter.register_structure_hook_factory(attrs.has, lambda t: _class_hook(converter, t))
    return converter


_CONVERTER = _make_converter()


def structure_config(raw: object) -> Config | list[Problem]:
    """The ``Config`` that ``raw`` describes, or every problem found in it."""
    try:
        return _CONVERTER.structure(raw, Config)
    except Exception as exc:  # every failure becomes a located problem
        return describe_errors(exc, "", secret=False)


def describe_errors(exc: BaseException, path: str, *, secret: bool) -> list[Problem]:
    """Flatten a cattrs error tree into ``(path, problem)`` pairs, in field order."""
    problems: list[Problem] = []
    if isinstance(exc, ClassValidationError):
        in_fields, others = exc.group_exceptions()
        fields = attrs.fields_dict(exc.cl)
        for sub, note in in_fields:
            metadata = fields[note.name].metadata
            key = metadata.get(TOML_KEY, note.name)
            problems += describe_errors(
                sub, join_key(path, key), secret=metadata.get(REDACT, False)
            )
        for sub in others:
            if isinstance(sub, ForbiddenExtraKeysError):
                keys = sorted(sub.extra_fields, key=str)
                problems += [(join_key(path, str(key)), "unknown key") for key in keys]
            else:
                problems += describe_errors(sub, path, secret=secret)
    elif isinstance(exc, IterableValidationError):
        in_items, others = exc.group_exceptions()
        for sub, item_note in in_items:
            problems += describe_errors(sub, f"{path}[{item_note.index}]", secret=secret)
        for sub in others:
            problems += describe_errors(sub, path, secret=secret)
    elif isinstance(exc, KeyError):
        problems.append((path, MISSING))
    elif isinstance(exc, WrongType):
        problems.append(
            (path, f"expected {exc.expected}, got {show_value(exc.value, secret=secret)}")
        )
    elif isinstance(exc, InvalidValue):
        problems.append((path, str(exc)))
    else:  # pragma: no cover - a hook failed in a way none of the checks foresaw
        problems.append((path, f"invalid value ({type(exc).__name__})"))
    return problems


def join_key(path: str, key: str) -> str:
    """``path.key``, quoting ``key`` as TOML does when it is not a bare key."""
    shown = key if _BARE_KEY.fullmatch(key) else json.dumps(key, ensure_ascii=False)
    return f"{path}.{shown}" if path else shown
