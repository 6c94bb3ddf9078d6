"""Resolving a type name from a config to a class: built-ins, plugin entry points, or ``pkg.module:Class``.

Built-ins are listed as import paths so that ``insidellms --help`` never imports a provider SDK,
and plugin entry points are only scanned (importlib.metadata reads every installed package's
metadata) for a name that is neither built in nor a ``module:Class`` path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from dataclasses import dataclass
from typing import Any

from insideLLMs.errors import UserError


class UnknownTypeError(UserError, LookupError):
    """A type name that is neither built in, nor a plugin, nor an importable ``module:Class``."""


@dataclass(frozen=True)
class Registry:
    kind: str  # "model" or "probe", for messages
    base: type[Any]  # what every class of this kind subclasses
    builtins: dict[str, str]  # name -> "module:Class"
    entry_point_group: str

    def names(self) -> list[str]:
        plugins = [ep.name for ep in _entry_points(self.entry_point_group)]
        return sorted(set(self.builtins) | set(plugins))

    def resolve(self, name: str) -> type[Any]:
        """The class for ``name``; ``UnknownTypeError`` if there is none or it is not a ``base`` subclass."""
        return self._checked(name, self._find(name))

    def summary(self, name: str) -> str:
        """One line saying what ``name`` is: its class docstring's first line, else its module's."""
        cls = self.resolve(name)
        doc = cls.__dict__.get("__doc__") or getattr(sys.modules.get(cls.__module__), "__doc__", None) or ""
        lines = inspect.cleandoc(doc).splitlines()
        return lines[0] if lines else ""

    def _checked(self, name: str, found: Any) -> type[Any]:
        if isinstance(found, type) and issubclass(found, self.base):
            return found
        qualname = getattr(found, "__qualname__", None)  # a class or a function: by name, never by address
        kind = "class" if isinstance(found, type) else type(found).__name__
        what = f"the {kind} {found.__module__}.{qualname}" if qualname else repr(found)
        base = f"{self.base.__module__}.{self.base.__qualname__}"
        raise UnknownTypeError(f"{self.kind} type {name!r} is {what}, not a {self.kind}: "
                               f"a custom {self.kind} type must subclass {base}")

    def _find(self, name: str) -> Any:
        if name in self.builtins:
            return _import(self.builtins[name])
        if ":" in name:
            try:
                return _import(name)
            except (ImportError, AttributeError) as exc:
                raise UnknownTypeError(f"cannot import {self.kind} type {name!r}: {exc}") from None
            except Exception as exc:  # the user's module fails as it is imported (a syntax error, a bad import-time call)
                raise UnknownTypeError(f"cannot import {self.kind} type {name!r}: {type(exc).__name__}: {exc}") from None
        for ep in _entry_points(self.entry_point_group):
            if ep.name == name:
                return ep.load()
        raise UnknownTypeError(
            f"unknown {self.kind} type {name!r}; built-in types: {', '.join(self.names())}, "
            f"or a custom class as 'package.module:ClassName'"
        )


def _entry_points(group: str) -> Any:
    from importlib.metadata import entry_points

    return entry_points(group=group)


def _import(path: str) -> type[Any]:
    module_name, _, attr = path.partition(":")
    return getattr(importlib.import_module(module_name), attr)


__all__ = [
    "Registry",
    "UnknownTypeError",
]
