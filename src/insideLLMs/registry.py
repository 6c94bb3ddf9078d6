"""Resolving a type name from a config to a class: built-ins, plugin entry points, or ``pkg.module:Class``.

Built-ins are listed as import paths so that ``insidellms --help`` never imports a provider SDK,
and plugin entry points are only scanned (importlib.metadata reads every installed package's
metadata, ~20 ms) for a name that is neither built in nor a ``module:Class`` path.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any
from insideLLMs.errors import UserError


class UnknownTypeError(UserError, LookupError):
    """A type name that is neither built in, nor a plugin, nor an importable ``module:Class``."""


@dataclass(frozen=True)
class Registry:
    kind: str  # "model" or "probe", for messages
    builtins: dict[str, str]  # name -> "module:Class"
    entry_point_group: str

    def names(self) -> list[str]:
        plugins = [ep.name for ep in _entry_points(self.entry_point_group)]
        return sorted(set(self.builtins) | set(plugins))

    def resolve(self, name: str) -> type[Any]:
        if name in self.builtins:
            return _import(self.builtins[name])
        if ":" in name:
            try:
                return _import(name)
            except (ImportError, AttributeError) as exc:
                raise UnknownTypeError(f"cannot import {self.kind} type {name!r}: {exc}") from None
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
