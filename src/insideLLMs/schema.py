"""Typed settings records validated from plain data (YAML, keyword arguments), with readable errors.

Built on msgspec: its C validator costs ~10 ms of start-up where pydantic's import and model
builds cost ~130 ms, which a 20-example ``insidellms run`` would otherwise mostly spend there.
``Settings`` forbids unknown keys; ``validate`` turns msgspec's one error into a ``SchemaError``
carrying the key path (for the caller to turn into ``file:line``) and a message in our words.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec

T = TypeVar("T")

#: msgspec's "... - at `$.runner.concurrency`" suffix, and the parts of such a path
_AT = re.compile(r" - at `\$(?P<path>[^`]*)`$")
_PATH_PART = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<name>[^`]+)`$")
_MISSING = re.compile(r"^Object missing required field `(?P<name>[^`]+)`$")
_FIELD = re.compile(r"^@(?P<name>\w+): ")  # see field_error
_TYPE_NAMES = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
               "array": "a list", "object": "a mapping", "null": "nothing (null)"}


class Settings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Base of every settings record: keyword construction, unknown keys are errors."""


class SchemaError(ValueError):
    """Data that does not fit a settings record: ``loc`` is the key path, ``message`` what is wrong."""

    def __init__(self, loc: tuple[str | int, ...], message: str) -> None:
        super().__init__(f"{'.'.join(str(p) for p in loc) or 'config'}: {message}")
        self.loc = loc
        self.message = message


def field_error(name: str, message: str) -> ValueError:
    """For a record's ``__post_init__``: an error about one of its fields (so the line is that field's)."""
    return ValueError(f"@{name}: {message}")


def validate(data: Any, kind: type[T]) -> T:
    """``data`` as a ``kind`` record (strict: no str -> int coercion), or ``SchemaError``."""
    try:
        return msgspec.convert(data, kind)
    except msgspec.ValidationError as exc:
        raise _schema_error(str(exc), data) from None


def _schema_error(text: str, data: Any) -> SchemaError:
    at = _AT.search(text)
    message = text[: at.start()] if at else text
    loc: list[str | int] = []
    for name, index in _PATH_PART.findall(at.group("path") if at else ""):
        if name:
            loc.append(name)
        elif index != "...":
            loc.append(int(index))
    if field := _FIELD.match(message):
        return SchemaError((*loc, field["name"]), message[field.end():])
    if unknown := _UNKNOWN.match(message):
        return SchemaError((*loc, unknown["name"]), f"unknown setting '{unknown['name']}'")
    if missing := _MISSING.match(message):
        return SchemaError((*loc, missing["name"]), "missing (required)")
    if message.startswith("Expected `"):
        message = _readable_types(message)
        value = _value_at(data, loc)
        if value is not _ABSENT and value is not None and not isinstance(value, (dict, list)):
            message += f" ({value!r})" if ", got " in message else f", got {value!r}"
    elif message.startswith("Invalid enum value "):
        message = f"invalid value {message[len('Invalid enum value '):]}"
    return SchemaError(tuple(loc), message)


def _readable_types(message: str) -> str:
    """"Expected `int`, got `str`" -> "expected an integer, got a string"."""

    def name(match: re.Match[str]) -> str:
        parts = [p.strip() for p in match.group(1).split("|")]
        return " or ".join(_TYPE_NAMES.get(p, p) for p in parts)

    return "e" + re.sub(r"`([^`]+)`", name, message)[1:]


_ABSENT = object()


def _value_at(data: Any, loc: list[str | int]) -> Any:
    for part in loc:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return _ABSENT
    return data
